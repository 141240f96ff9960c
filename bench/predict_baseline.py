#!/usr/bin/env python3
"""arflow's payment prediction next to LightGBM on the same features.

    pip install lightgbm scikit-learn pandas
    python3 bench/predict_baseline.py [CSV] [--split 2013-07-01] [--no-arflow]

CSV defaults to ../shared/data/ibm-ar/WA_Fn-UseC_-Accounts-Receivable.csv
(IBM's accounts-receivable sample). The script

1. builds, in pandas, the same 45 features arflow builds
   (crates/domain/src/predict/features.rs and linear.rs), for every invoice
   as of the day before its issue date: only invoices settled before the
   issue date are known;
2. trains LightGBM (and, for reference, logistic and linear regression) on
   the invoices issued before the split and tests on the others: AUC,
   accuracy and Brier score for "late" (DaysLate > 0), MAE and RMSE for
   DaysToSettle;
3. runs arflow's evaluation on the same file and split
   (`cargo run --release -p arflow-domain --example predict_ibm -- --json`),
   checks that arflow's features of the test invoices equal the ones built
   here, and prints both side by side.

The features (T = days from issue to settlement, late = max(0, settled - due),
history = the customer's invoices settled by the as-of date D = issue - 1):

  hist_count, hist_mean_dtp, hist_median_dtp, hist_std_dtp (sample sd),
  hist_mean_late, hist_median_late, hist_std_late, hist_late_rate (late > 0),
  hist_late30_rate (late > 30), hist_wmean_dtp and hist_wmean_late (weighted by
  amount), recent_mean_dtp and recent_mean_late (last 5 by settlement date),
  recent_trend_dtp (least-squares slope over the last 5, at least 3),
  hist_mean_dtp_minus_terms, hist_disputed_rate, hist_paperless_rate,
  hist_mean_terms, hist_mean_ln_amount (ln(1 + amount)), hist_foreign_rate,
  days_since_last_settlement, ln_amount, amount_rel (ln_amount -
  hist_mean_ln_amount), terms_days, foreign_currency, disputed, paperless,
  month, quarter, days_since_issue (-1 at issue), days_overdue (0 at issue),
  open_count, open_ln_amount, overdue_count, open_max_days_overdue,
  open_oldest_age (the customer's other invoices open at D), reminders_sent,
  days_since_last_reminder, promises_kept, promises_broken, promise_pending
  (no dunning history in this file: 0 or missing), and the linear stage's
  base_blup, lin_pred, lin_late, lin_remaining: days-to-pay = customer level +
  beta . (disputed, paperless, terms, ln_amount, foreign), beta estimated within
  customers on the training invoices, the level of a customer shrunk to the
  mean level by n / (n + k), k = within variance / between variance.
Month and quarter are not given to the trees (arflow leaves them out too).
"""

import argparse
import warnings
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CSV = os.path.join(ROOT, "..", "shared", "data", "ibm-ar", "WA_Fn-UseC_-Accounts-Receivable.csv")

FEATURES = [
    "hist_count", "hist_mean_dtp", "hist_median_dtp", "hist_std_dtp", "hist_mean_late",
    "hist_median_late", "hist_std_late", "hist_late_rate", "hist_late30_rate", "hist_wmean_dtp",
    "hist_wmean_late", "recent_mean_dtp", "recent_mean_late", "recent_trend_dtp",
    "hist_mean_dtp_minus_terms", "hist_disputed_rate", "hist_paperless_rate", "hist_mean_terms",
    "hist_mean_ln_amount", "hist_foreign_rate", "days_since_last_settlement", "ln_amount",
    "amount_rel", "terms_days", "foreign_currency", "disputed", "paperless", "month", "quarter",
    "days_since_issue", "days_overdue", "open_count", "open_ln_amount", "overdue_count",
    "open_max_days_overdue", "open_oldest_age", "reminders_sent", "days_since_last_reminder",
    "promises_kept", "promises_broken", "promise_pending", "base_blup", "lin_pred", "lin_late",
    "lin_remaining",
]
NOT_FOR_TREES = {"month", "quarter"}
X_COLS = ["disputed", "paperless", "terms_days", "ln_amount", "foreign_currency"]
HIST_X_COLS = ["hist_disputed_rate", "hist_paperless_rate", "hist_mean_terms", "hist_mean_ln_amount", "hist_foreign_rate"]


def load(path):
    df = pd.read_csv(path, dtype={"invoiceNumber": str, "customerID": str})
    for c in ["InvoiceDate", "DueDate", "SettledDate"]:
        df[c] = pd.to_datetime(df[c], format="%m/%d/%Y")
    epoch = pd.Timestamp("1970-01-01")
    df["issue"] = (df.InvoiceDate - epoch).dt.days
    df["due"] = (df.DueDate - epoch).dt.days
    df["settled"] = (df.SettledDate - epoch).dt.days
    df["row"] = np.arange(len(df))
    df["invoice_id"] = df.row + 1
    # Amounts in cents, as arflow stores them.
    df["cents"] = (df.InvoiceAmount * 100).round().astype(np.int64)
    df["ln_amount"] = np.log1p(df.cents / 100.0)
    df["dtp"] = df.settled - df.issue
    df["late"] = (df.settled - df.due).clip(lower=0)
    df["disp"] = (df.Disputed == "Yes").astype(float)
    df["paperless"] = df.PaperlessBill.map({"Electronic": 1.0, "Paper": 0.0})
    return df


def raw_features(df):
    """Features of every invoice as of the day before its issue date."""
    out = []
    groups = {c: g.sort_values(["settled", "row"]) for c, g in df.groupby("customerID")}
    for r in df.itertuples():
        g = groups[r.customerID]
        d = r.issue - 1
        h = g[g.settled <= d]
        o = g[(g.issue <= d) & (g.settled > d) & (g.row != r.row)]
        f = dict.fromkeys(FEATURES, np.nan)
        n = len(h)
        f["hist_count"] = n
        if n:
            dtp, late = h.dtp.astype(float), h.late.astype(float)
            f["hist_mean_dtp"] = dtp.mean()
            f["hist_median_dtp"] = dtp.clip(0, 1023).median()
            f["hist_std_dtp"] = dtp.std(ddof=1) if n > 1 else np.nan
            f["hist_mean_late"] = late.mean()
            f["hist_median_late"] = late.clip(0, 1023).median()
            f["hist_std_late"] = late.std(ddof=1) if n > 1 else np.nan
            f["hist_late_rate"] = (late > 0).mean()
            f["hist_late30_rate"] = (late > 30).mean()
            w = h.cents.astype(float)
            f["hist_wmean_dtp"] = (w * dtp).sum() / w.sum()
            f["hist_wmean_late"] = (w * late).sum() / w.sum()
            last = h.tail(5)
            f["recent_mean_dtp"] = last.dtp.mean()
            f["recent_mean_late"] = last.late.mean()
            if len(last) >= 3:
                x = np.arange(len(last), dtype=float)
                v = last.dtp.values.astype(float)
                f["recent_trend_dtp"] = ((x - x.mean()) * (v - v.mean())).sum() / ((x - x.mean()) ** 2).sum()
            terms = (h.due - h.issue).astype(float)
            f["hist_mean_dtp_minus_terms"] = (dtp - terms).mean()
            f["hist_disputed_rate"] = h.disp.mean()
            f["hist_paperless_rate"] = (h.paperless == 1.0).mean()
            f["hist_mean_terms"] = terms.mean()
            f["hist_mean_ln_amount"] = h.ln_amount.mean()
            f["hist_foreign_rate"] = 0.0
            f["days_since_last_settlement"] = d - h.settled.max()
            f["amount_rel"] = r.ln_amount - h.ln_amount.mean()
        f["ln_amount"] = r.ln_amount
        f["terms_days"] = r.due - r.issue
        f["foreign_currency"] = 0.0
        f["disputed"] = r.disp
        f["paperless"] = r.paperless
        f["month"] = r.InvoiceDate.month
        f["quarter"] = (r.InvoiceDate.month - 1) // 3 + 1
        f["days_since_issue"] = d - r.issue
        f["days_overdue"] = max(0, d - r.due)
        f["open_count"] = len(o)
        f["open_ln_amount"] = math.log1p(o.cents.sum() / 100.0)
        f["overdue_count"] = int((o.due < d).sum())
        f["open_max_days_overdue"] = max(0, d - o.due.min()) if len(o) else 0
        f["open_oldest_age"] = d - o.issue.min() if len(o) else np.nan
        f["reminders_sent"] = 0.0
        f["promises_kept"] = 0.0
        f["promises_broken"] = 0.0
        f["promise_pending"] = 0.0
        out.append(f)
    return pd.DataFrame(out, index=df.index)


def fit_linear(F, y, cust):
    """Within-customer ridge for beta, then variance components for the shrinkage."""
    X = F[X_COLS].fillna(0.0).values
    y = np.asarray(y, dtype=float)
    dfx = pd.DataFrame(X)
    xt = X - dfx.groupby(cust.values).transform("mean").values
    yt = y - pd.Series(y).groupby(cust.values).transform("mean").values
    beta = np.linalg.solve(xt.T @ xt + np.eye(5), xt.T @ yt)
    a = pd.Series(y - X @ beta)
    means = a.groupby(cust.values).mean()
    counts = a.groupby(cust.values).size()
    n, m = len(a), len(means)
    within = ((a - a.groupby(cust.values).transform("mean")) ** 2).sum() / (n - m)
    glob = means.mean()
    between = max(means.var(ddof=1) - (within / counts).mean(), within * 0.01)
    k = min(max(within / between, 0.01), 100.0)
    return beta, glob, k


def add_linear(F, beta, glob, k):
    n = F.hist_count.values
    hist = F.hist_mean_dtp.values - F[HIST_X_COLS].fillna(0.0).values @ beta
    level = np.where((n > 0) & ~np.isnan(F.hist_mean_dtp.values), (n * np.nan_to_num(hist) + k * glob) / (n + k), glob)
    pred = level + F[X_COLS].fillna(0.0).values @ beta
    F = F.copy()
    F["base_blup"] = level
    F["lin_pred"] = pred
    F["lin_late"] = pred - F.terms_days
    F["lin_remaining"] = pred - F.days_since_issue
    return F


def metrics(y_late, p_late, y_days, p_days):
    from sklearn.metrics import roc_auc_score
    return {
        "auc": roc_auc_score(y_late, p_late),
        "accuracy": float(((p_late >= 0.5) == y_late).mean()),
        "brier": float(((p_late - y_late) ** 2).mean()),
        "mae": float(np.abs(p_days - y_days).mean()),
        "rmse": float(np.sqrt(((p_days - y_days) ** 2).mean())),
    }


def run_lightgbm(F, df, train, test):
    import lightgbm as lgb
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = [c for c in FEATURES if c not in NOT_FOR_TREES]
    y_late = (df.late > 0).astype(int).values
    y_days = df.dtp.astype(float).values
    # Same time holdout as arflow: the latest 20 % of the training invoices
    # choose the number of trees, then the model is refitted on all of them.
    cut = np.sort(df.issue.values[train])[int(train.sum() * 0.8)]
    fit, hold = train & (df.issue.values < cut), train & (df.issue.values >= cut)
    params = dict(learning_rate=0.05, num_leaves=7, max_depth=3, min_child_samples=20,
                  subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=5.0,
                  random_state=42, verbose=-1)
    res = {}

    def best_iter(model_cls, y, **kw):
        m = model_cls(n_estimators=1000, **params, **kw)
        m.fit(F.loc[fit, cols], y[fit], eval_set=[(F.loc[hold, cols], y[hold])],
              callbacks=[lgb.early_stopping(30, verbose=False)])
        return max(1, m.best_iteration_ or 1)

    n_clf = best_iter(lgb.LGBMClassifier, y_late)
    clf = lgb.LGBMClassifier(n_estimators=n_clf, **params).fit(F.loc[train, cols], y_late[train])
    p_late = clf.predict_proba(F.loc[test, cols])[:, 1]
    for obj in ["l1", "l2"]:
        n_reg = best_iter(lgb.LGBMRegressor, y_days, objective=obj)
        reg = lgb.LGBMRegressor(n_estimators=n_reg, objective=obj, **params).fit(F.loc[train, cols], y_days[train])
        res[f"LightGBM ({obj} days, {n_clf}/{n_reg} trees)"] = metrics(y_late[test], p_late, y_days[test], reg.predict(F.loc[test, cols]))
    # Linear references on the same features (missing values: training means).
    Xtr = F.loc[train, cols]
    means = Xtr.mean()
    fill = lambda X: X.fillna(means).fillna(0.0)
    logit = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(fill(Xtr), y_late[train])
    lin = LinearRegression().fit(fill(Xtr), y_days[train])
    res["logistic / linear regression"] = metrics(
        y_late[test], logit.predict_proba(fill(F.loc[test, cols]))[:, 1], y_days[test], lin.predict(fill(F.loc[test, cols])))
    return res


def run_arflow(csv, split, features_out):
    cmd = ["cargo", "run", "--release", "-q", "-p", "arflow-domain", "--example", "predict_ibm", "--",
           csv, "--split", split, "--json", "--features-csv", features_out]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def check_features(F, df, path):
    rust = pd.read_csv(path).set_index("invoice_id")
    mine = F.copy()
    mine.index = df.invoice_id.values
    mine = mine.loc[rust.index]
    bad = []
    for c in FEATURES:
        a, b = mine[c].values.astype(float), rust[c].values.astype(float)
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        tol = 1e-3 * np.maximum(1.0, np.abs(np.nan_to_num(a)))
        if np.isnan(diff).any() or (diff > tol).any():
            bad.append((c, int(((diff > tol) | np.isnan(diff)).sum()), float(np.nanmax(diff))))
    return len(rust), bad


def main():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*eval_set.*")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", default=DEFAULT_CSV)
    ap.add_argument("--split", default="2013-07-01")
    ap.add_argument("--no-arflow", action="store_true", help="only the Python side")
    args = ap.parse_args()
    if not os.path.exists(args.csv):
        print(f"SKIPPED: {args.csv} not found (needs ../shared/data/ibm-ar)", file=sys.stderr)
        return 0
    df = load(args.csv)
    split = (pd.Timestamp(args.split) - pd.Timestamp("1970-01-01")).days
    train = (df.issue.values < split)
    test = ~train
    F = raw_features(df)
    beta, glob, k = fit_linear(F[train], df.dtp[train], df.customerID[train])
    F = add_linear(F, beta, glob, k)
    print(f"split {args.split}: train {train.sum()} invoices, test {test.sum()} invoices")
    print(f"linear stage: beta {np.round(beta, 3).tolist()}, k {k:.3f}\n")
    rows = run_lightgbm(F, df, train, test)
    if not args.no_arflow:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "features.csv")
            a = run_arflow(os.path.abspath(args.csv), args.split, path)
            n, bad = check_features(F, df, path)
        ev = a["evaluation"]
        rows = {"arflow": {"auc": a["auc"], "accuracy": a["accuracy"], "brier": a["brier"],
                           "mae": a["mae"], "rmse": a["rmse"]}, **rows}
        for b in ev["late_baselines"]:
            rows[f"baseline: {b['name']}"] = {**b["metrics"], "mae": float("nan"), "rmse": float("nan")}
        for b in ev["days_baselines"]:
            rows[f"baseline: {b['name']} (days)"] = {"auc": float("nan"), "accuracy": float("nan"),
                                                     "brier": float("nan"), **b["metrics"]}
    print(f"{'model':<44}{'AUC':>8}{'acc':>8}{'Brier':>8}{'MAE':>8}{'RMSE':>8}")
    fmt = lambda v: "     n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:8.4f}"
    for name, m in rows.items():
        print(f"{name:<44}{fmt(m.get('auc'))}{fmt(m.get('accuracy'))}{fmt(m.get('brier'))}{fmt(m.get('mae'))}{fmt(m.get('rmse'))}")
    if not args.no_arflow:
        if bad:
            print(f"\nFEATURE MISMATCH between arflow and this script on {n} test invoices:", file=sys.stderr)
            for c, count, worst in bad:
                print(f"  {c}: {count} rows differ, max |diff| {worst:.4g}", file=sys.stderr)
            return 1
        print(f"\nfeatures: arflow's and this script's agree on all {len(FEATURES)} columns of the {n} test invoices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
