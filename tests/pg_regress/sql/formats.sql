-- Every format 2020-12 defines is asserted: one value each format accepts and one it refuses
-- (the table in the README). IDN formats included (idna): disallowed characters and leading
-- combining marks are refused.
CREATE EXTENSION lowcode;
SELECT lowcode.create_app('fmt');
CREATE TEMP TABLE cases (format text, good text, bad text);
INSERT INTO cases VALUES
  ('date', '2026-11-29', '2026-02-30'),
  ('date-time', '2026-11-29T10:00:00Z', '2026-11-29 10:00'),
  ('time', '10:00:00+01:00', '25:00:00Z'),
  ('duration', 'P1Y2M3DT4H', 'P1H'),
  ('email', 'ana@example.com', 'ana.example.com'),
  ('idn-email', '用户@例子.广告', E'ana@\u0300example.com'),
  ('hostname', 'plant-7.example.com', '-plant.example.com'),
  ('idn-hostname', '例子.广告', E'\u0300example.com'),
  ('ipv4', '192.0.2.1', '256.0.2.1'),
  ('ipv6', '2001:db8::1', '2001:db8::1::2'),
  ('uri', 'https://example.com/a?b=c', '//example.com/a'),
  ('uri-reference', '../a?b=c', 'https://exa mple.com'),
  ('iri', 'https://例子.广告/路径', '/路径'),
  ('iri-reference', '/路径?q=1', 'https://例子 广告'),
  ('uri-template', 'https://example.com/{id}', 'https://example.com/{id'),
  ('uuid', '123e4567-e89b-12d3-a456-426614174000', '123e4567-e89b-12d3-a456'),
  ('json-pointer', '/a/b~0c', 'a/b'),
  ('relative-json-pointer', '1/a', '/a'),
  ('regex', '^[a-z]+$', '(unclosed');
-- One form with a property per format.
SELECT lowcode.define_form('fmt', 'all', jsonb_build_object('type', 'object', 'properties',
         (SELECT jsonb_object_agg(format, jsonb_build_object('type', 'string', 'format', format)) FROM cases)));
-- Each valid value passes, each invalid one fails with a "format" error on its own field.
SELECT c.format,
       lowcode.is_valid('fmt', 'all', jsonb_build_object(c.format, c.good)) AS good_passes,
       lowcode.is_valid('fmt', 'all', jsonb_build_object(c.format, c.bad)) AS bad_passes,
       (SELECT string_agg(v.keyword || ' at ' || v.field, '; ') FROM lowcode.validate('fmt', 'all', jsonb_build_object(c.format, c.bad)) v) AS issue
  FROM cases c ORDER BY c.format;
-- All valid values together make one valid document.
SELECT lowcode.is_valid('fmt', 'all', (SELECT jsonb_object_agg(format, good) FROM cases)) AS all_good;
-- IDN: more labels with a disallowed character or a leading combining mark.
SELECT lowcode.define_form('fmt', 'idn', '{"properties": {"host": {"format": "idn-hostname"}, "mail": {"format": "idn-email"}}}');
SELECT v AS value,
       lowcode.is_valid('fmt', 'idn', jsonb_build_object('host', v)) AS host_ok,
       lowcode.is_valid('fmt', 'idn', jsonb_build_object('mail', 'ana@' || v)) AS mail_ok
  FROM unnest(ARRAY['bücher.example', 'xn--bcher-kva.example', E'a\u3000b.example', E'\u0301a.example', E'a\u2488.example', 'a..example']) v;
-- Older drafts assert the formats they define (draft-07 has idn-hostname, draft-04 has hostname).
SELECT lowcode.define_form('fmt', 'd7', '{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"h": {"format": "idn-hostname"}, "d": {"format": "date"}}}');
SELECT lowcode.is_valid('fmt', 'd7', '{"h": "例子.广告", "d": "2026-11-29"}') AS d7_good,
       lowcode.is_valid('fmt', 'd7', E'{"h": "\\u0300x.com"}') AS d7_bad_host,
       lowcode.is_valid('fmt', 'd7', '{"d": "2026-13-01"}') AS d7_bad_date;
SELECT lowcode.define_form('fmt', 'd4', '{"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"h": {"format": "hostname"}, "ip": {"format": "ipv4"}}}');
SELECT lowcode.is_valid('fmt', 'd4', '{"h": "plant-7.example.com", "ip": "192.0.2.1"}') AS d4_good,
       lowcode.is_valid('fmt', 'd4', '{"h": "-x.com"}') AS d4_bad_host,
       lowcode.is_valid('fmt', 'd4', '{"ip": "1.2.3"}') AS d4_bad_ip;
