/**
 * Modbus exception codes as data (Modbus Application Protocol v1.1b3, §7).
 *
 * A slave that cannot serve a request answers with the function code's high
 * bit set (0x80 | fc) and one exception code byte. The adapter looks the code
 * up here, never matches message text. `retriable` says whether asking again
 * later can succeed without an operator changing anything: a busy or failing
 * device can recover, an illegal address in the register map cannot.
 */

export interface ModbusException {
  /** The exception code byte of the response. */
  readonly code: number;
  /** Upper-case name as the specification spells it. */
  readonly name: string;
  /** What it means, for logs and device status. */
  readonly message: string;
  /** True when the same request may succeed later without a config change. */
  readonly retriable: boolean;
}

/** Every exception code the specification defines, in code order. */
export const MODBUS_EXCEPTIONS: readonly ModbusException[] = Object.freeze(
  [
    {
      code: 0x01,
      name: 'ILLEGAL FUNCTION',
      message: 'the device does not support this function code (check the register map function)',
      retriable: false,
    },
    {
      code: 0x02,
      name: 'ILLEGAL DATA ADDRESS',
      message: 'the address or address range is not valid on this device (check addresses, or set maxGap to 0)',
      retriable: false,
    },
    {
      code: 0x03,
      name: 'ILLEGAL DATA VALUE',
      message: 'a value in the request is not acceptable to the device (e.g. the quantity)',
      retriable: false,
    },
    {
      code: 0x04,
      name: 'SERVER DEVICE FAILURE',
      message: 'the device hit an unrecoverable error while serving the request',
      retriable: true,
    },
    {
      code: 0x05,
      name: 'ACKNOWLEDGE',
      message: 'the device accepted the request but needs a long time to process it',
      retriable: true,
    },
    {
      code: 0x06,
      name: 'SERVER DEVICE BUSY',
      message: 'the device is busy with a long-duration command; retry later',
      retriable: true,
    },
    {
      code: 0x07,
      name: 'NEGATIVE ACKNOWLEDGE',
      message: 'the device cannot perform the programming function',
      retriable: false,
    },
    {
      code: 0x08,
      name: 'MEMORY PARITY ERROR',
      message: 'the device detected a parity error in its memory; retry, service may be needed',
      retriable: true,
    },
    {
      code: 0x0a,
      name: 'GATEWAY PATH UNAVAILABLE',
      message: 'the gateway could not allocate a path to the target (misconfigured or overloaded gateway)',
      retriable: false,
    },
    {
      code: 0x0b,
      name: 'GATEWAY TARGET DEVICE FAILED TO RESPOND',
      message: 'the gateway got no response from the target device (device absent or off line)',
      retriable: true,
    },
  ].map((e) => Object.freeze(e)),
);

const BY_CODE: ReadonlyMap<number, ModbusException> = new Map(MODBUS_EXCEPTIONS.map((e) => [e.code, e]));

/**
 * The table entry for an exception code; codes the specification does not
 * define get a synthetic `UNKNOWN EXCEPTION 0xNN` entry (retriable: false).
 */
export function modbusException(code: number): ModbusException {
  const known = BY_CODE.get(code);
  if (known) return known;
  const hex = code.toString(16).toUpperCase().padStart(2, '0');
  return Object.freeze({
    code,
    name: `UNKNOWN EXCEPTION 0x${hex}`,
    message: `the device answered with exception code 0x${hex}, which the specification does not define`,
    retriable: false,
  });
}
