"""Run inside Qlib's own environment (ml/qlib_side.py makes it): Alpha158 with Qlib's LightGBM and XGBoost
on each fold of a request, with the hyperparameters of Qlib's published Alpha158 benchmark configs
(examples/benchmarks/{LightGBM,XGBoost}/workflow_config_*_Alpha158.yaml), their threads set by the request.

    <qlib venv>/bin/python ml/qlib_worker.py request.json

The request names the Qlib data folder, the output Parquet file, the thread count and the folds' train,
valid and test segments. The output holds model, date, symbol, prediction for every fold's test dates; it
is rewritten after each fold.
This file imports only what that environment has: not the project.
"""

import json
import sys
from collections.abc import Callable
from typing import Any

import pandas as pd


def main(request_path: str) -> None:
    import qlib
    from qlib.constant import REG_US
    from qlib.contrib.data.handler import Alpha158
    from qlib.contrib.model.gbdt import LGBModel
    from qlib.contrib.model.xgboost import XGBModel
    from qlib.data.dataset import DatasetH

    with open(request_path) as file:
        request = json.load(file)
    threads = int(request["threads"])
    # Qlib's models log their training curves to its recorder: an MLflow store of its own beside the data
    # (MLflow 3 refuses the plain-folder store Qlib defaults to).
    recorder = {
        "class": "MLflowExpManager",
        "module_path": "qlib.workflow.expm",
        "kwargs": {"uri": request["mlflow_uri"], "default_exp_name": "stockyard-bench"},
    }
    qlib.init(provider_uri=request["data_dir"], region=REG_US, kernels=threads, exp_manager=recorder)
    folds = request["folds"]
    start = min(fold["train"][0] for fold in folds)
    end = max(fold["test"][1] for fold in folds)
    # Alpha158's default processors are fitted on nothing (drop missing labels, z-score the label per
    # date), so one handler serves every fold.
    handler = Alpha158(
        instruments="all", start_time=start, end_time=end, fit_start_time=start, fit_end_time=end
    )
    models: dict[str, Callable[[], Any]] = {
        "lightgbm": lambda: LGBModel(
            loss="mse",
            colsample_bytree=0.8879,
            learning_rate=0.2,
            subsample=0.8789,
            lambda_l1=205.6999,
            lambda_l2=580.9768,
            max_depth=8,
            num_leaves=210,
            num_threads=threads,
            verbosity=-1,
        ),
        "xgboost": lambda: XGBModel(
            eval_metric="rmse",
            colsample_bytree=0.8879,
            eta=0.0421,
            max_depth=8,
            n_estimators=647,
            subsample=0.8789,
            nthread=threads,
        ),
    }
    parts = []
    for fold in folds:
        segments = {name: tuple(fold[name]) for name in ("train", "valid", "test")}
        dataset = DatasetH(handler, segments=segments)
        for name, make in models.items():
            model = make()
            model.fit(dataset)
            prediction = model.predict(dataset, segment="test")
            frame = prediction.rename("prediction").reset_index()
            frame.columns = ["date", "symbol", "prediction"]
            parts.append(frame.assign(model=name))
            print(
                f"qlib {name} test {segments['test'][0]}..{segments['test'][1]}: {len(frame)} predictions",
                flush=True,
            )
        # Written after every fold: a run stopped early still leaves the years it finished.
        pd.concat(parts, ignore_index=True).to_parquet(request["output"], index=False)


if __name__ == "__main__":
    main(sys.argv[1])
