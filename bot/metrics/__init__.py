"""Platform metrics: figures from stored data (`platform`), scorecards (`scorecard`), DORA (`dora`), charts (`charts`). No Slack here."""
