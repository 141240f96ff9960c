"""The DuckDB side of the foundation benchmark: aging buckets and DSO as of a
date, straight from the 1M-invoice CSV written by `arflow demo --csv DIR --single-file`.

Same definitions as arflow's reports: an invoice is in the books on D when it
was issued on or before D and not voided on or before D; it is open unless its
paid_date is on or before D (or it was written off on or before D); buckets
are days past due (current, 1-30, 31-60, 61-90, 90+); standard DSO is ending
AR / sales of the 90 days ending D x 90; best possible DSO uses current AR.
"""
import json
import sys

import duckdb

csv_path, as_of = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads = 2")
RATES = {"USD": "1", "EUR": "1.08", "GBP": "1.27"}
rates_sql = " UNION ALL ".join(f"SELECT '{c}' AS currency, CAST({r} AS DECIMAL(18,6)) AS rate" for c, r in RATES.items())
query = f"""
WITH rates AS ({rates_sql}),
raw AS (
  SELECT issue_date, due_date, currency, total, status, status_date, paid_date
  FROM read_csv('{csv_path}', header = true, types = {{'issue_date': 'DATE', 'due_date': 'DATE', 'currency': 'VARCHAR',
       'total': 'DECIMAL(18,3)', 'status': 'VARCHAR', 'status_date': 'DATE', 'paid_date': 'DATE'}})
), inv AS (
  SELECT issue_date, due_date, ROUND(total * rate, 2) AS total, rate, status, status_date, paid_date
  FROM raw LEFT JOIN rates USING (currency)
), booked AS (
  SELECT *, DATE '{as_of}' - due_date AS days_past_due,
         CASE WHEN (paid_date IS NOT NULL AND paid_date <= DATE '{as_of}')
                OR (status = 'written_off' AND status_date <= DATE '{as_of}') THEN 0 ELSE total END AS open
  FROM inv
  WHERE issue_date <= DATE '{as_of}'
    AND NOT (status = 'void' AND status_date <= DATE '{as_of}')
)
SELECT
  SUM(open) FILTER (WHERE days_past_due <= 0) AS current,
  SUM(open) FILTER (WHERE days_past_due BETWEEN 1 AND 30) AS d1_30,
  SUM(open) FILTER (WHERE days_past_due BETWEEN 31 AND 60) AS d31_60,
  SUM(open) FILTER (WHERE days_past_due BETWEEN 61 AND 90) AS d61_90,
  SUM(open) FILTER (WHERE days_past_due > 90) AS d90_plus,
  SUM(open) AS total_open,
  SUM(total) FILTER (WHERE issue_date > DATE '{as_of}' - INTERVAL 90 DAY) AS sales_90d,
  COUNT(*) FILTER (WHERE rate IS NULL) AS rows_without_rate
FROM booked
"""
row = con.execute(query).fetchone()
if row[-1]:
    sys.exit(f"{row[-1]} invoices are in a currency without a rate here")
cur, b1, b2, b3, b4, total_open, sales = (float(x or 0) for x in row[:-1])
out = {
    "buckets": [cur, b1, b2, b3, b4],
    "total_open": total_open,
    "dso_standard": total_open / sales * 90 if sales else None,
    "best_possible_dso": cur / sales * 90 if sales else None,
}
print(json.dumps(out))
