-- Example rules for the widget line. Each statement writes a derived topic
-- that replicates like any other. Check with `millstream rules check DIR`,
-- try with `millstream rules test FILE --input readings.jsonl`.

SET 'auto.offset.reset'='earliest';

-- The raw readings and their columns. No TIMESTAMP= here: the bridge already
-- stamps every record with its event time (the device's reading_ts when it
-- sends one, else the time of reading), which Modbus PLCs never send. Add
-- TIMESTAMP='reading_ts' only for a topic whose records all carry the field.
CREATE STREAM widgets (
  reading_ts VARCHAR, sensor_id VARCHAR, production_line VARCHAR, widget_type VARCHAR,
  colour VARCHAR, temp_celcius DOUBLE, widget_weight_g DOUBLE
) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON');

-- Red widgets, as they come.
CREATE STREAM widgets_red AS
  SELECT * FROM widgets WHERE colour = 'RED' EMIT CHANGES;

-- Heavy widgets per production line, per minute.
CREATE TABLE heavy_by_line AS
  SELECT production_line, COUNT(*) AS n FROM widgets
  WINDOW TUMBLING (SIZE 1 MINUTE)
  WHERE widget_weight_g > 120
  GROUP BY production_line EMIT CHANGES;

-- Sensors running hot: 5-minute average above 20 °C, updated every minute.
CREATE TABLE hot_sensors AS
  SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets
  WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE, GRACE PERIOD 30 SECONDS)
  GROUP BY sensor_id HAVING temp > 20 EMIT FINAL;
