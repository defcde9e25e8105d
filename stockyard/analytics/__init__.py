"""Portfolio analytics, backtests and signal health as plain pandas/numpy functions.

Nothing here imports Dagster or the ML stack, so the API can use it as well as the assets: `portfolio` for
returns, risk and holdings figures, `backtest` for the top-k strategy on model scores, `signal_health` for the
realized quality of past recommendations.
"""
