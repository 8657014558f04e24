-- scenario 9 (bench/s9_growth.sql): lowcode.transition on the 1,000 records of range 'move':
-- call n moves record (n - 1) mod 1000, 'start' on even passes, 'pause' on odd ones.
-- (-D move_first=, n=0.)
\set n :n + 1
\set rec :move_first + (:n - 1) % 1000
\if ((:n - 1) / 1000) % 2 = 0
SELECT lowcode.transition(:rec, 'start');
\else
SELECT lowcode.transition(:rec, 'pause');
\endif
