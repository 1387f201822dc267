;; json-scan: validates JSON record values and finds the top-level fields a rule reads,
;; a block of records per call (the rules' hot path; see block-field-scanner.ts, which is
;; the only user, and field-extractor.ts, whose contract this keeps).
;;
;; Built into rules/json-scan-wasm.ts by `npm run build:wasm` (bin/build-wasm.js, wabt);
;; a test checks that the committed module is this file's.
;;
;; The memory is shared (imported as env.memory): the caller may scan different records of a
;; block on several threads at once, each with its own instance of this module bound ("bind")
;; to its own scratch area; the tables and caches are only read while scans run.
;;
;; Memory layout (addresses in bytes; the caller fills the tables and grows the memory):
;;       64   10^0 .. 10^22 as f64 (exact), filled by "init"
;;      256   field table: 16 entries of 16 bytes: i32 address and length of the field's
;;            UTF-8 name; i32 address and length of its upper-case ASCII name (length -1:
;;            none: case-sensitive, or not ASCII)
;;      512   the names (the caller's)
;;     8192   scratch areas, 4096 bytes per instance ("bind" says which), each:
;;            +0     container stack of $container (1 object, 2 array), 64 deep
;;            +64    key template: 32 keys of 80 bytes: i32 length, i32 slot (-1: no field),
;;                   i32 hits, i32 exact, then up to 64 bytes of the key. The keys of the last
;;                   record this instance saw at each index; a key equal to its template's
;;                   needs no matching.
;;            +2624  runs: per field (32 bytes each) the last found record's plain string:
;;                   i32 start, i32 length (-1: none), i32 record index, i32 hash, i32 its
;;                   cache flag (0x10000 or 0); reset by each "scan".
;;    16384   string caches, one per field of the table: 4096 entries of 64 bytes (i32 length,
;;            then up to 48 bytes), the entry of a string being its hash & 4095. The caller
;;            fills them (with the strings it made, which it keeps by field and entry); the
;;            scanner only compares. An entry never filled holds length 0: the empty string,
;;            which is what the caller keeps for it too (so the memory starts as all zeros and
;;            untouched pages cost no RAM).
;;   16384 + 262144 * fields   data: the values, then i32 starts, i32 ends and the results (see "scan").
;; Scanning reads up to 15 bytes past a value's end (sixteen at a time); the caller leaves
;; that much memory after the data.
(module
  (import "env" "memory" (memory 1 16384 shared))
  ;; this instance's scratch area (see the layout)
  (global $scr (mut i32) (i32.const 8192))
  ;; what the last scalar scanner found: $kind (see "scan") and, for kind 3, $num
  (global $kind (mut i32) (i32.const 0))
  (global $num (mut f64) (f64.const 0))

  ;; Fills the powers of ten (once per memory).
  (func (export "init")
    (local $i i32) (local $v f64)
    (local.set $v (f64.const 1))
    (loop $l
      (f64.store offset=64 (i32.shl (local.get $i) (i32.const 3)) (local.get $v))
      (local.set $v (f64.mul (local.get $v) (f64.const 10)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.le_u (local.get $i) (i32.const 22)))))

  ;; Binds this instance to the scratch area at $s and clears its key template (lengths -1:
  ;; no key yet). Two instances scanning at once must have different areas.
  (func (export "bind") (param $s i32)
    (global.set $scr (local.get $s))
    (memory.fill (i32.add (local.get $s) (i32.const 64)) (i32.const 0xff) (i32.const 2560)))

  ;; JSON whitespace from $p: the first position that is not.
  (func $ws (param $p i32) (param $e i32) (result i32)
    (local $c i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done (i32.gt_u (local.get $c) (i32.const 32)))
        (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 10)))
                                      (i32.or (i32.eq (local.get $c) (i32.const 13)) (i32.eq (local.get $c) (i32.const 9))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $l)))
    (local.get $p))

  ;; Bytes [$a, $a+$n) equal [$b, $b+$n); sixteen at a time (reads up to 15 bytes past both).
  (func $same (param $a i32) (param $b i32) (param $n i32) (result i32)
    (loop $l
      (if (i32.le_u (local.get $n) (i32.const 16)) (then
        (return (i32.eqz (i32.and (i32.xor (i8x16.bitmask (i8x16.eq (v128.load (local.get $a)) (v128.load (local.get $b)))) (i32.const 0xffff))
                                  (i32.sub (i32.shl (i32.const 1) (local.get $n)) (i32.const 1)))))))
      (if (i32.ne (i8x16.bitmask (i8x16.eq (v128.load (local.get $a)) (v128.load (local.get $b)))) (i32.const 0xffff)) (then (return (i32.const 0))))
      (local.set $a (i32.add (local.get $a) (i32.const 16)))
      (local.set $b (i32.add (local.get $b) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 16)))
      (br $l))
    (unreachable))

  ;; ASCII bytes at $a, upper-cased, equal the $n upper-case bytes at $b.
  (func $sameUpper (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $i i32) (local $c i32)
    (block $no (loop $l
      (if (i32.ge_u (local.get $i) (local.get $n)) (then (return (i32.const 1))))
      (local.set $c (i32.load8_u (i32.add (local.get $a) (local.get $i))))
      (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26)) (then (local.set $c (i32.sub (local.get $c) (i32.const 32)))))
      (br_if $no (i32.ne (local.get $c) (i32.load8_u (i32.add (local.get $b) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 0))

  (func $isHex (param $c i32) (result i32)
    (i32.or (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10))
            (i32.lt_u (i32.sub (i32.or (local.get $c) (i32.const 32)) (i32.const 97)) (i32.const 6))))

  ;; $p at a backslash in a string: the position after the escape, or -1.
  (func $escape (param $p i32) (param $e i32) (result i32)
    (local $c i32)
    (if (i32.ge_u (i32.add (local.get $p) (i32.const 1)) (local.get $e)) (then (return (i32.const -1))))
    (local.set $c (i32.load8_u offset=1 (local.get $p)))
    ;; \" \\ \/ \b \f \n \r \t
    (if (i32.or (i32.or (i32.or (i32.eq (local.get $c) (i32.const 34)) (i32.eq (local.get $c) (i32.const 92)))
                        (i32.or (i32.eq (local.get $c) (i32.const 47)) (i32.eq (local.get $c) (i32.const 98))))
                (i32.or (i32.or (i32.eq (local.get $c) (i32.const 102)) (i32.eq (local.get $c) (i32.const 110)))
                        (i32.or (i32.eq (local.get $c) (i32.const 114)) (i32.eq (local.get $c) (i32.const 116)))))
      (then (return (i32.add (local.get $p) (i32.const 2)))))
    ;; \uXXXX
    (if (i32.ne (local.get $c) (i32.const 117)) (then (return (i32.const -1))))
    (if (i32.gt_u (i32.add (local.get $p) (i32.const 6)) (local.get $e)) (then (return (i32.const -1))))
    (if (i32.eqz (i32.and (i32.and (call $isHex (i32.load8_u offset=2 (local.get $p))) (call $isHex (i32.load8_u offset=3 (local.get $p))))
                          (i32.and (call $isHex (i32.load8_u offset=4 (local.get $p))) (call $isHex (i32.load8_u offset=5 (local.get $p))))))
      (then (return (i32.const -1))))
    (i32.add (local.get $p) (i32.const 6)))

  ;; $p at a quote: the position after the string's closing quote, or -1 (control byte, bad
  ;; escape, no end). $kind 1: plain ASCII; 2: has escapes or non-ASCII bytes (any byte of
  ;; 0x80 and up is accepted: values are decoded as UTF-8 with replacement, as the runner does).
  (func $string (param $p i32) (param $e i32) (result i32)
    (local $c i32) (local $k i32) (local $m i32) (local $v v128)
    (local.set $k (i32.const 1))
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (loop $l
      (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
      ;; the first quote, backslash, control or non-ASCII byte of the next sixteen
      (local.set $v (v128.load (local.get $p)))
      (local.set $m (i8x16.bitmask (v128.or (v128.or (i8x16.eq (local.get $v) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34))
                                                      (i8x16.eq (local.get $v) (v128.const i8x16 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92)))
                                             (i8x16.lt_s (local.get $v) (v128.const i8x16 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32)))))
      (if (i32.eqz (local.get $m)) (then (local.set $p (i32.add (local.get $p) (i32.const 16))) (br $l)))
      (local.set $p (i32.add (local.get $p) (i32.ctz (local.get $m))))
      (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
      (local.set $c (i32.load8_u (local.get $p)))
      (if (i32.eq (local.get $c) (i32.const 34)) (then
        (global.set $kind (local.get $k))
        (return (i32.add (local.get $p) (i32.const 1)))))
      (if (i32.eq (local.get $c) (i32.const 92)) (then
        (local.set $k (i32.const 2))
        (local.set $p (call $escape (local.get $p) (local.get $e)))
        (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))
        (br $l)))
      (if (i32.ge_u (local.get $c) (i32.const 128)) (then
        (local.set $k (i32.const 2))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $l)))
      (return (i32.const -1)))
    (unreachable))

  ;; $p at '-' or a digit: the position after the number (JSON grammar), or -1. $kind 3 with
  ;; the value in $num when it has at most 15 significant digits, at most 22 after the point
  ;; and no exponent (then digits / 10^fraction is one correctly rounded division of two exact
  ;; doubles: what Number() returns); else $kind 4 (the caller decodes the text).
  (func $number (param $p i32) (param $e i32) (result i32)
    (local $neg i32) (local $acc i64) (local $digits i32) (local $frac i32) (local $c i32) (local $simple i32) (local $f i32) (local $v f64)
    (local.set $simple (i32.const 1))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 45)) (then
      (local.set $neg (i32.const 1))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))))
    (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
    (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
    (if (i32.eqz (local.get $c))
      (then
        (local.set $digits (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 1))))
      (else
        (if (i32.ge_u (local.get $c) (i32.const 10)) (then (return (i32.const -1))))
        (block $done (loop $l
          (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
          (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
          (br_if $done (i32.ge_u (local.get $c) (i32.const 10)))
          (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $l)))))
    (if (i32.and (i32.lt_u (local.get $p) (local.get $e)) (i32.eq (i32.load8_u (local.get $p)) (i32.const 46))) (then
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $f (local.get $p))
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
        (br_if $done (i32.ge_u (local.get $c) (i32.const 10)))
        (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
        (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
        (local.set $frac (i32.add (local.get $frac) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $l)))
      (if (i32.eq (local.get $p) (local.get $f)) (then (return (i32.const -1))))))
    (if (i32.lt_u (local.get $p) (local.get $e)) (then
      (if (i32.eq (i32.or (i32.load8_u (local.get $p)) (i32.const 32)) (i32.const 101)) (then
        (local.set $simple (i32.const 0))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.lt_u (local.get $p) (local.get $e)) (then
          (local.set $c (i32.load8_u (local.get $p)))
          (if (i32.or (i32.eq (local.get $c) (i32.const 43)) (i32.eq (local.get $c) (i32.const 45)))
            (then (local.set $p (i32.add (local.get $p) (i32.const 1)))))))
        (local.set $f (local.get $p))
        (block $done (loop $l
          (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
          (br_if $done (i32.ge_u (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)) (i32.const 10)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $l)))
        (if (i32.eq (local.get $p) (local.get $f)) (then (return (i32.const -1))))))))
    (if (i32.and (local.get $simple) (i32.and (i32.le_u (local.get $digits) (i32.const 15)) (i32.le_u (local.get $frac) (i32.const 22))))
      (then
        (local.set $v (f64.convert_i64_u (local.get $acc)))
        (if (local.get $frac) (then (local.set $v (f64.div (local.get $v) (f64.load offset=64 (i32.shl (local.get $frac) (i32.const 3)))))))
        (if (local.get $neg) (then (local.set $v (f64.neg (local.get $v)))))
        (global.set $num (local.get $v))
        (global.set $kind (i32.const 3)))
      (else (global.set $kind (i32.const 4))))
    (local.get $p))

  ;; true, false or null at $p: the position after it, or -1; $kind 5, 6 or 7.
  (func $literal (param $p i32) (param $e i32) (result i32)
    (local $w i32)
    (if (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $e)) (then (return (i32.const -1))))
    (local.set $w (i32.load (local.get $p)))
    (if (i32.eq (local.get $w) (i32.const 0x65757274)) (then (global.set $kind (i32.const 5)) (return (i32.add (local.get $p) (i32.const 4)))))
    (if (i32.eq (local.get $w) (i32.const 0x6c6c756e)) (then (global.set $kind (i32.const 7)) (return (i32.add (local.get $p) (i32.const 4)))))
    (if (i32.and (i32.eq (local.get $w) (i32.const 0x736c6166))
                 (i32.and (i32.lt_u (i32.add (local.get $p) (i32.const 4)) (local.get $e)) (i32.eq (i32.load8_u offset=4 (local.get $p)) (i32.const 101))))
      (then (global.set $kind (i32.const 6)) (return (i32.add (local.get $p) (i32.const 5)))))
    (i32.const -1))

  ;; Bytes at $p that are ASCII digits, counted up to sixteen (bytes past the value's end count too).
  (func $digits (param $p i32) (result i32)
    (i32.ctz (i32.or (i32.xor (i8x16.bitmask (i8x16.lt_u (i8x16.sub (v128.load (local.get $p)) (v128.const i8x16 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48))
                                                         (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                                  (i32.const 0xffff))
                     (i32.const 0x10000))))

  ;; A number at $p ('-' or a digit): the position after it, or -1, as $number says. When no field
  ;; takes it ($hits 0), its value is not wanted: the common forms (digits, or digits '.' digits,
  ;; each run under sixteen, no leading zero, no sign, no exponent) are validated sixteen bytes at a
  ;; time; anything else goes through $number.
  (func $skipNumber (param $p i32) (param $e i32) (param $hits i32) (result i32)
    (local $n i32) (local $q i32)
    (block $general
      (br_if $general (local.get $hits))
      (local.set $n (call $digits (local.get $p)))
      ;; no digit ('-'), a leading zero, sixteen digits or more, or digits past the end
      (br_if $general (i32.or (i32.or (i32.eqz (local.get $n)) (i32.eq (local.get $n) (i32.const 16)))
                              (i32.or (i32.and (i32.eq (i32.load8_u (local.get $p)) (i32.const 48)) (i32.gt_u (local.get $n) (i32.const 1)))
                                      (i32.gt_u (i32.add (local.get $p) (local.get $n)) (local.get $e)))))
      (local.set $q (i32.add (local.get $p) (local.get $n)))
      (if (i32.and (i32.lt_u (local.get $q) (local.get $e)) (i32.eq (i32.load8_u (local.get $q)) (i32.const 46))) (then
        (local.set $n (call $digits (i32.add (local.get $q) (i32.const 1))))
        (br_if $general (i32.or (i32.or (i32.eqz (local.get $n)) (i32.eq (local.get $n) (i32.const 16)))
                                (i32.gt_u (i32.add (i32.add (local.get $q) (i32.const 1)) (local.get $n)) (local.get $e))))
        (local.set $q (i32.add (i32.add (local.get $q) (i32.const 1)) (local.get $n)))))
      (br_if $general (i32.and (i32.lt_u (local.get $q) (local.get $e)) (i32.eq (i32.or (i32.load8_u (local.get $q)) (i32.const 32)) (i32.const 101))))
      (return (local.get $q)))
    (call $number (local.get $p) (local.get $e)))

  ;; A string, number or literal at $p: the position after it, or -1.
  (func $scalar (param $p i32) (param $e i32) (result i32)
    (local $c i32)
    (local.set $c (i32.load8_u (local.get $p)))
    (if (i32.eq (local.get $c) (i32.const 34)) (then (return (call $string (local.get $p) (local.get $e)))))
    (if (i32.or (i32.eq (local.get $c) (i32.const 45)) (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)))
      (then (return (call $number (local.get $p) (local.get $e)))))
    (call $literal (local.get $p) (local.get $e)))

  ;; `"key" :` and whitespace at $p inside a nested object: the position of the value, or -1.
  (func $key (param $p i32) (param $e i32) (result i32)
    (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)) (then (return (i32.const -1))))
    (local.set $p (call $string (local.get $p) (local.get $e)))
    (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))
    (local.set $p (call $ws (local.get $p) (local.get $e)))
    (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 58)) (then (return (i32.const -1))))
    (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $e)))

  ;; An object or array at $p: the position after it, or -1 (deeper than 64: -1, the general
  ;; scanner decides); $kind 8. Everything inside is validated.
  (func $container (param $p i32) (param $e i32) (result i32)
    (local $c i32) (local $depth i32) (local $top i32) (local $after i32)
    (loop $l
      (if (i32.eqz (local.get $after)) (then
        ;; at a value
        (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
        (local.set $c (i32.load8_u (local.get $p)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91))) (then
          (if (i32.ge_u (local.get $depth) (i32.const 64)) (then (return (i32.const -1))))
          (local.set $top (select (i32.const 1) (i32.const 2) (i32.eq (local.get $c) (i32.const 123))))
          (i32.store8 (i32.add (global.get $scr) (local.get $depth)) (local.get $top))
          (local.set $depth (i32.add (local.get $depth) (i32.const 1)))
          (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $e)))
          (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
          (if (i32.eq (i32.load8_u (local.get $p)) (select (i32.const 125) (i32.const 93) (i32.eq (local.get $top) (i32.const 1)))) (then
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
            (local.set $after (i32.const 1))
            (br $l)))
          (if (i32.eq (local.get $top) (i32.const 1)) (then
            (local.set $p (call $key (local.get $p) (local.get $e)))
            (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))))
          (br $l)))
        (local.set $p (call $scalar (local.get $p) (local.get $e)))
        (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))
        (local.set $after (i32.const 1))
        (br $l)))
      ;; after a value: close containers, or a comma and the next value
      (if (i32.eqz (local.get $depth)) (then (global.set $kind (i32.const 8)) (return (local.get $p))))
      (local.set $p (call $ws (local.get $p) (local.get $e)))
      (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const -1))))
      (local.set $c (i32.load8_u (local.get $p)))
      (local.set $top (i32.load8_u (i32.add (global.get $scr) (i32.sub (local.get $depth) (i32.const 1)))))
      (if (i32.eq (local.get $c) (select (i32.const 125) (i32.const 93) (i32.eq (local.get $top) (i32.const 1)))) (then
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
        (br $l)))
      (if (i32.ne (local.get $c) (i32.const 44)) (then (return (i32.const -1))))
      (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $e)))
      (if (i32.eq (local.get $top) (i32.const 1)) (then
        (local.set $p (call $key (local.get $p) (local.get $e)))
        (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))))
      (local.set $after (i32.const 0))
      (br $l))
    (unreachable))

  ;; Which field the key [$ks, $ks+$len) fills: sets $hits (fields matched), $slot and $exact
  ;; (1: the exact name, 0: ignoring case) from the field table.
  (global $hits (mut i32) (i32.const 0))
  (global $slot (mut i32) (i32.const 0))
  (global $exact (mut i32) (i32.const 0))
  (func $match (param $ks i32) (param $len i32) (param $nf i32)
    (local $f i32) (local $fp i32)
    (global.set $hits (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $f) (local.get $nf)))
      (local.set $fp (i32.add (i32.const 256) (i32.shl (local.get $f) (i32.const 4))))
      (if (i32.eq (local.get $len) (i32.load offset=4 (local.get $fp)))
        (then (if (call $same (local.get $ks) (i32.load (local.get $fp)) (local.get $len)) (then
          (global.set $hits (i32.add (global.get $hits) (i32.const 1)))
          (global.set $slot (local.get $f))
          (global.set $exact (i32.const 1))
          (local.set $f (i32.add (local.get $f) (i32.const 1)))
          (br $l)))))
      (if (i32.eq (local.get $len) (i32.load offset=12 (local.get $fp)))
        (then (if (call $sameUpper (local.get $ks) (i32.load offset=8 (local.get $fp)) (local.get $len)) (then
          (global.set $hits (i32.add (global.get $hits) (i32.const 1)))
          (global.set $slot (local.get $f))
          (global.set $exact (i32.const 0))))))
      (local.set $f (i32.add (local.get $f) (i32.const 1)))
      (br $l))))

  ;; One record's value [$p, $e), results at $out (see "scan"): 1 when it is a valid JSON
  ;; object whose keys are plain ASCII (no escapes) and each field got at most one exact and
  ;; one case-folded key; else 0 (invalid, or for the general scanner to decide).
  (func $record (param $p i32) (param $e i32) (param $out i32) (param $nf i32) (result i32)
    (local $f i32) (local $ks i32) (local $len i32) (local $c i32) (local $m i32) (local $ki i32) (local $tp i32)
    (local $hits i32) (local $slot i32) (local $exact i32) (local $vs i32) (local $rec i32) (local $flags i32) (local $h i32) (local $q i32) (local $ce i32) (local $run i32) (local $v v128)
    (block $cleared (loop $l
      (br_if $cleared (i32.ge_u (local.get $f) (local.get $nf)))
      (i32.store offset=8 (i32.add (local.get $out) (i32.mul (local.get $f) (i32.const 24))) (i32.const 0))
      (local.set $f (i32.add (local.get $f) (i32.const 1)))
      (br $l)))
    (if (i32.le_u (i32.load8_u (local.get $p)) (i32.const 32)) (then (local.set $p (call $ws (local.get $p) (local.get $e)))))
    (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 123)) (then (return (i32.const 0))))
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (if (i32.le_u (i32.load8_u (local.get $p)) (i32.const 32)) (then (local.set $p (call $ws (local.get $p) (local.get $e)))))
    (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 125)) (then
      (return (i32.eq (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $e)) (local.get $e)))))
    (loop $keys
      (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
      (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)) (then (return (i32.const 0))))
      (local.set $ks (i32.add (local.get $p) (i32.const 1)))
      ;; the key's template (only keys 0 to 31 have one: the 33rd key's would be past it, and a
      ;; record of many keys would read past the memory's end)
      (local.set $tp (i32.add (i32.add (global.get $scr) (i32.const 64)) (i32.mul (local.get $ki) (i32.const 80))))
      (local.set $hits (i32.const -1))
      (block $keyed
        ;; a key of at most 15 bytes equal to its template's: its bytes and closing quote are the
        ;; template's (stored with its quote), one comparison of sixteen bytes; no scan, no match
        (if (i32.lt_u (local.get $ki) (i32.const 32)) (then
          (local.set $len (i32.load (local.get $tp)))
          (if (i32.le_u (local.get $len) (i32.const 15)) (then
            (if (i32.and (i32.eqz (i32.and (i32.xor (i8x16.bitmask (i8x16.eq (v128.load (local.get $ks)) (v128.load offset=16 (local.get $tp)))) (i32.const 0xffff))
                                           (i32.sub (i32.shl (i32.const 2) (local.get $len)) (i32.const 1))))
                         (i32.lt_u (i32.add (local.get $ks) (local.get $len)) (local.get $e)))
              (then
                (local.set $hits (i32.load offset=8 (local.get $tp)))
                (local.set $slot (i32.load offset=4 (local.get $tp)))
                (local.set $exact (i32.load offset=12 (local.get $tp)))
                (local.set $p (i32.add (i32.add (local.get $ks) (local.get $len)) (i32.const 1)))
                (br $keyed)))))))
        (local.set $p (local.get $ks))
        ;; the key: plain ASCII up to its quote, sixteen bytes at a time (else the general scanner decides)
        (loop $k
          (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
          (local.set $v (v128.load (local.get $p)))
          (local.set $m (i8x16.bitmask (v128.or (v128.or (i8x16.eq (local.get $v) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34))
                                                          (i8x16.eq (local.get $v) (v128.const i8x16 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92)))
                                                 (i8x16.lt_s (local.get $v) (v128.const i8x16 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32)))))
          (if (i32.eqz (local.get $m)) (then (local.set $p (i32.add (local.get $p) (i32.const 16))) (br $k)))
          (local.set $p (i32.add (local.get $p) (i32.ctz (local.get $m))))
          (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
          (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)) (then (return (i32.const 0)))))
        (local.set $len (i32.sub (local.get $p) (local.get $ks)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        ;; a longer key equal to its template's
        (if (i32.lt_u (local.get $ki) (i32.const 32)) (then
          (if (i32.eq (local.get $len) (i32.load (local.get $tp))) (then
            (if (call $same (local.get $ks) (i32.add (local.get $tp) (i32.const 16)) (local.get $len)) (then
              (local.set $hits (i32.load offset=8 (local.get $tp)))
              (local.set $slot (i32.load offset=4 (local.get $tp)))
              (local.set $exact (i32.load offset=12 (local.get $tp)))
              (br $keyed)))))))
        ;; else matched, and the template made this key's (its closing quote after it when it fits)
        (call $match (local.get $ks) (local.get $len) (local.get $nf))
        (local.set $hits (global.get $hits))
        (local.set $slot (global.get $slot))
        (local.set $exact (global.get $exact))
        (if (i32.and (i32.lt_u (local.get $ki) (i32.const 32)) (i32.le_u (local.get $len) (i32.const 64))) (then
          (i32.store (local.get $tp) (local.get $len))
          (i32.store offset=4 (local.get $tp) (local.get $slot))
          (i32.store offset=8 (local.get $tp) (local.get $hits))
          (i32.store offset=12 (local.get $tp) (local.get $exact))
          (memory.copy (i32.add (local.get $tp) (i32.const 16)) (local.get $ks) (local.get $len))
          (if (i32.lt_u (local.get $len) (i32.const 64)) (then
            (i32.store8 offset=16 (i32.add (local.get $tp) (local.get $len)) (i32.const 34)))))))
      (if (i32.le_u (i32.load8_u (local.get $p)) (i32.const 32)) (then (local.set $p (call $ws (local.get $p) (local.get $e)))))
      (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
      (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 58)) (then (return (i32.const 0))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (if (i32.le_u (i32.load8_u (local.get $p)) (i32.const 32)) (then (local.set $p (call $ws (local.get $p) (local.get $e)))))
      (local.set $ki (i32.add (local.get $ki) (i32.const 1)))
      ;; a key filling several fields: the general scanner decides
      (if (i32.gt_u (local.get $hits) (i32.const 1)) (then (return (i32.const 0))))
      ;; the value: plain ASCII strings here, anything else through the scanners above
      (local.set $vs (local.get $p))
      (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
      (local.set $c (i32.load8_u (local.get $p)))
      (if (i32.eq (local.get $c) (i32.const 34))
        (then
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (loop $s
            (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
            (local.set $v (v128.load (local.get $p)))
            (local.set $m (i8x16.bitmask (v128.or (v128.or (i8x16.eq (local.get $v) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34))
                                                            (i8x16.eq (local.get $v) (v128.const i8x16 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92 92)))
                                                   (i8x16.lt_s (local.get $v) (v128.const i8x16 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32)))))
            (if (i32.eqz (local.get $m)) (then (local.set $p (i32.add (local.get $p) (i32.const 16))) (br $s))))
          (local.set $p (i32.add (local.get $p) (i32.ctz (local.get $m))))
          (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
          (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 34))
            (then
              (local.set $p (i32.add (local.get $p) (i32.const 1)))
              (global.set $kind (i32.const 1)))
            (else
              ;; an escape, control or non-ASCII byte: the whole string again, through $string
              (local.set $p (call $string (local.get $vs) (local.get $e)))
              (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const 0)))))))
        (else
          (if (i32.or (i32.eq (local.get $c) (i32.const 45)) (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)))
            (then (local.set $p (call $skipNumber (local.get $p) (local.get $e) (local.get $hits))))
            (else (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
              (then (local.set $p (call $container (local.get $p) (local.get $e))))
              (else (local.set $p (call $literal (local.get $p) (local.get $e)))))))
          (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const 0))))))
      (if (local.get $hits) (then
        (local.set $rec (i32.add (i32.add (local.get $out) (i32.const 8)) (i32.mul (local.get $slot) (i32.const 24))))
        ;; the keys seen (1, 2) only: not 0x100, which is about the value stored, not this one
        (local.set $flags (i32.and (i32.shr_u (i32.load (local.get $rec)) (i32.const 8)) (i32.const 3)))
        ;; a second key filling the field the same way: JSON.parse decides (the last one wins there)
        (if (i32.and (local.get $flags) (select (i32.const 2) (i32.const 1) (local.get $exact))) (then (return (i32.const 0))))
        (if (i32.and (i32.eqz (local.get $exact)) (i32.ne (i32.and (local.get $flags) (i32.const 2)) (i32.const 0)))
          ;; a case-folded key after the exact one: the exact one's value stays
          (then (i32.store (local.get $rec) (i32.or (i32.load (local.get $rec)) (i32.const 256))))
          (else
            (i32.store (local.get $rec) (i32.or (global.get $kind) (i32.shl (i32.or (local.get $flags) (select (i32.const 2) (i32.const 1) (local.get $exact))) (i32.const 8))))
            (i32.store offset=4 (local.get $rec) (local.get $vs))
            (i32.store offset=8 (local.get $rec) (local.get $p))
            (f64.store offset=16 (local.get $rec) (global.get $num))
            (block $stored (if (i32.eq (global.get $kind) (i32.const 1))
              (then
                ;; equal to the field's plain string in the last found record (flag 0x200; see "scan"):
                ;; that one's hash and cache flag are this one's too, and its index goes in the f64's
                ;; low word (readings come in runs of one timestamp text: no hashing for those)
                (local.set $run (i32.add (i32.add (global.get $scr) (i32.const 2624)) (i32.shl (local.get $slot) (i32.const 5))))
                (local.set $q (i32.sub (local.get $p) (local.get $vs)))
                (if (i32.eq (i32.load offset=4 (local.get $run)) (local.get $q)) (then
                  (if (call $same (i32.load (local.get $run)) (local.get $vs) (local.get $q)) (then
                    (i32.store (local.get $rec) (i32.or (i32.load (local.get $rec)) (i32.or (i32.const 0x20000) (i32.load offset=16 (local.get $run)))))
                    (i32.store offset=12 (local.get $rec) (i32.load offset=12 (local.get $run)))
                    (i32.store offset=16 (local.get $rec) (i32.load offset=8 (local.get $run)))
                    (br $stored)))))
                ;; the string's hash, as StringCache computes it: h = h * 31 + byte, four bytes a step
                ;; (h * 31^4 + b0 * 31^3 + b1 * 31^2 + b2 * 31 + b3: the same value mod 2^32, with one
                ;; multiplication on the chain instead of four), then byte by byte
                (local.set $h (i32.const 0))
                (local.set $q (i32.add (local.get $vs) (i32.const 1)))
                (block $h4d (loop $h4
                  (br_if $h4d (i32.gt_u (i32.add (local.get $q) (i32.const 4)) (i32.sub (local.get $p) (i32.const 1))))
                  (local.set $h (i32.add (i32.add (i32.mul (local.get $h) (i32.const 923521))
                                                  (i32.mul (i32.load8_u (local.get $q)) (i32.const 29791)))
                                         (i32.add (i32.add (i32.mul (i32.load8_u offset=1 (local.get $q)) (i32.const 961))
                                                           (i32.mul (i32.load8_u offset=2 (local.get $q)) (i32.const 31)))
                                                  (i32.load8_u offset=3 (local.get $q)))))
                  (local.set $q (i32.add (local.get $q) (i32.const 4)))
                  (br $h4)))
                (block $hd (loop $hl
                  (br_if $hd (i32.ge_u (local.get $q) (i32.sub (local.get $p) (i32.const 1))))
                  (local.set $h (i32.add (i32.mul (local.get $h) (i32.const 31)) (i32.load8_u (local.get $q))))
                  (local.set $q (i32.add (local.get $q) (i32.const 1)))
                  (br $hl)))
                (i32.store offset=12 (local.get $rec) (local.get $h))
                ;; the field's string cache (see the layout): the same bytes in the entry the hash picks
                ;; mean the caller already holds the string (flag 0x100, bit 16 of the kind word)
                (local.set $q (i32.sub (i32.sub (local.get $p) (local.get $vs)) (i32.const 2)))
                (if (i32.le_u (local.get $q) (i32.const 48)) (then
                  (local.set $ce (i32.add (i32.add (i32.const 16384) (i32.mul (local.get $slot) (i32.const 262144)))
                                          (i32.shl (i32.and (local.get $h) (i32.const 4095)) (i32.const 6))))
                  (if (i32.eq (i32.load (local.get $ce)) (local.get $q)) (then
                    (if (call $same (i32.add (local.get $vs) (i32.const 1)) (i32.add (local.get $ce) (i32.const 4)) (local.get $q)) (then
                      (i32.store (local.get $rec) (i32.or (i32.load (local.get $rec)) (i32.const 0x10000))))))))))))))))
      (if (i32.le_u (i32.load8_u (local.get $p)) (i32.const 32)) (then (local.set $p (call $ws (local.get $p) (local.get $e)))))
      (if (i32.ge_u (local.get $p) (local.get $e)) (then (return (i32.const 0))))
      (local.set $c (i32.load8_u (local.get $p)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (if (i32.eq (local.get $c) (i32.const 44)) (then
        (if (i32.le_u (i32.load8_u (local.get $p)) (i32.const 32)) (then (local.set $p (call $ws (local.get $p) (local.get $e)))))
        (br $keys)))
      (if (i32.ne (local.get $c) (i32.const 125)) (then (return (i32.const 0)))))
    (i32.eq (call $ws (local.get $p) (local.get $e)) (local.get $e)))

  ;; Scans $n records: record i's value is [starts[i], ends[i]) (i32 arrays at $starts and
  ;; $ends); its results at $out + i * (8 + 24 * $nf): i32 status (1: found; 0: invalid, or
  ;; for the general scanner to decide), then per field (at +8 + 24 f): i32 kind | flags << 8,
  ;; i32 value start, i32 value end, i32 hash of a plain string's bytes (between its quotes),
  ;; f64 number. Flags: 1 a case-folded key was seen, 2 the exact key was seen, 0x100 a plain string
  ;; whose bytes are in its field's string cache (at its hash & 4095), 0x200 a plain string equal to
  ;; the field's plain string in an earlier found record of this scan, whose index is then in the
  ;; low half of the f64 (readings come in runs of one timestamp text), counted from $base
  ;; (the block's index of this call's first record: a block may be scanned in parts). Kinds: 0 absent,
  ;; 1 plain ASCII string, 2 string to decode, 3 number (the f64), 4 number to decode (its
  ;; text), 5 true, 6 false, 7 null, 8 object or array (its text). $nf fields (at most 16) are
  ;; in the field table. Returns how many records have status 1.
  (func (export "scan") (param $n i32) (param $starts i32) (param $ends i32) (param $out i32) (param $nf i32) (param $base i32) (result i32)
    (local $i i32) (local $ok i32) (local $o i32) (local $s i32) (local $stride i32)
    (local $f i32) (local $rec i32) (local $run i32) (local $vs i32)
    (local.set $stride (i32.add (i32.const 8) (i32.mul (local.get $nf) (i32.const 24))))
    (local.set $o (local.get $out))
    (memory.fill (i32.add (global.get $scr) (i32.const 2624)) (i32.const 0xff) (i32.const 512))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $s (call $record (i32.load (local.get $starts)) (i32.load (local.get $ends)) (local.get $o) (local.get $nf)))
      (i32.store (local.get $o) (local.get $s))
      (local.set $ok (i32.add (local.get $ok) (local.get $s)))
      ;; a found record's plain strings become their fields' runs (see $record: flag 0x200)
      (if (local.get $s) (then
        (local.set $f (i32.const 0))
        (block $fd (loop $fl
          (br_if $fd (i32.ge_u (local.get $f) (local.get $nf)))
          (local.set $rec (i32.add (i32.add (local.get $o) (i32.const 8)) (i32.mul (local.get $f) (i32.const 24))))
          (if (i32.eq (i32.and (i32.load (local.get $rec)) (i32.const 0xff)) (i32.const 1)) (then
            (local.set $run (i32.add (i32.add (global.get $scr) (i32.const 2624)) (i32.shl (local.get $f) (i32.const 5))))
            (local.set $vs (i32.load offset=4 (local.get $rec)))
            (i32.store (local.get $run) (local.get $vs))
            (i32.store offset=4 (local.get $run) (i32.sub (i32.load offset=8 (local.get $rec)) (local.get $vs)))
            (i32.store offset=8 (local.get $run) (i32.add (local.get $base) (local.get $i)))
            (i32.store offset=12 (local.get $run) (i32.load offset=12 (local.get $rec)))
            (i32.store offset=16 (local.get $run) (i32.and (i32.load (local.get $rec)) (i32.const 0x10000)))))
          (local.set $f (i32.add (local.get $f) (i32.const 1)))
          (br $fl)))))
      (local.set $starts (i32.add (local.get $starts) (i32.const 4)))
      (local.set $ends (i32.add (local.get $ends) (i32.const 4)))
      (local.set $o (i32.add (local.get $o) (local.get $stride)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $ok))
)
