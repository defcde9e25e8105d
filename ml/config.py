"""Settings of the ML layer: where MLflow lives and how big the scheduled training is (environment, prefix
STOCKYARD_ML_), and the frozen configs of the dataset, the walk-forward evaluation and each model family
(logged with every run as config.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stockyard.endpoints import resolve_endpoints
from stockyard.settings import ServicesSettings, StockyardSettings, get_services_settings


class MLSettings(StockyardSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKYARD_ML_")

    tracking_uri: str | None = Field(
        default=None,
        description="An MLflow tracking server (http://host:5000); unset: the PostgreSQL database "
        "<warehouse>_mlflow beside the warehouse.",
    )
    artifact_root: Path | None = Field(
        default=None, description="Artifact folder for the experiments; default <state_dir>/mlflow-artifacts."
    )
    ui_host: str = "127.0.0.1"
    ui_port: int = 5000
    ui_url: str | None = Field(
        default=None,
        description="The MLflow UI as a browser reaches it, which the run links in Dagster's metadata name; "
        "default: the tracking server when one is given, else http://<ui_host>:<ui_port>.",
    )
    horizon: int = Field(default=5, ge=1, description="Trading days of the forward excess return to predict.")
    # The champion's data, chosen by `stockyard bench models` on 1999-2021 US large caps (README, Models
    # benchmark); the benchmark's defaults are these, so its default row is the champion's configuration.
    feature_set: str = Field(default="default", description="Features: default, alpha158 or all.")
    label: Literal["zscore", "rank"] = Field(
        default="rank", description="Training label: the target's per-date z-score or rank."
    )
    max_train_days: int = Field(
        default=1260, ge=0, description="Trading days a model trains on, the latest; 0: all of them."
    )
    promotion_metric: str = "rank_ic"
    promotion_min_improvement: float = Field(default=0.005, ge=0.0)

    # What the Dagster training assets run: sized so the sample market (110 symbols since 2019) trains all
    # three families in a few minutes on 2 cores; a small market needs shorter folds.
    folds: int = Field(default=4, ge=1, description="Walk-forward test folds.")
    test_days: int = Field(default=126, ge=1, description="Trading days per test fold.")
    validation_days: int = Field(default=63, ge=1, description="Early-stopping dates before each test fold.")
    min_train_days: int = Field(default=252, ge=1, description="Fewest training dates of the first fold.")
    xgboost_rounds: int = Field(
        default=300, ge=1, description="Most boosting rounds (early stopping ends sooner)."
    )
    lstm_epochs: int = Field(default=4, ge=1)
    lstm_samples_per_epoch: int = Field(default=50_000, ge=1, description="Training rows drawn per epoch.")
    prophet_history_days: int = Field(
        default=756, ge=2, description="Trading days each Prophet model fits on."
    )
    prophet_min_history_days: int = Field(
        default=126, ge=2, description="Symbols with a shorter history at a fit's cutoff get no forecast."
    )
    threads: int | None = Field(
        default=None, ge=1, description="Cores XGBoost and Prophet use (threads, processes); unset: all."
    )
    seeds: tuple[int, ...] = Field(
        default=(7, 11),
        min_length=1,
        description="Seeds of the stochastic families (XGBoost, LSTM), a JSON list: each trains as a step of "
        "its own and their rank ensemble is registered. Prophet fits once.",
    )

    def dataset(self) -> DatasetConfig:
        return DatasetConfig(horizon=self.horizon, feature_set=self.feature_set, label=self.label)

    def walk_forward(self) -> WalkForwardConfig:
        return WalkForwardConfig(
            n_folds=self.folds,
            test_days=self.test_days,
            validation_days=self.validation_days,
            min_train_days=self.min_train_days,
            max_train_days=self.max_train_days or None,
        )

    def xgboost(self) -> XGBoostConfig:
        return XGBoostConfig(n_estimators=self.xgboost_rounds, n_jobs=self.threads)

    def lstm(self) -> LSTMConfig:
        # The small network trains several times faster on one thread than on two (on the sample market,
        # 4 s against 20 s an epoch), so it keeps to one whatever `threads` says.
        return LSTMConfig(epochs=self.lstm_epochs, samples_per_epoch=self.lstm_samples_per_epoch, n_threads=1)

    def prophet(self) -> ProphetConfig:
        return ProphetConfig(
            history_days=self.prophet_history_days,
            min_history_days=self.prophet_min_history_days,
            n_jobs=self.threads,
        )


@lru_cache
def get_ml_settings() -> MLSettings:
    return MLSettings()


@dataclass(frozen=True)
class TrackingConfig:
    """Where runs, models and artifacts go, and the URL of the UI that shows them."""

    tracking_uri: str
    # Experiments created here store their artifacts under this folder; None leaves it to a remote server.
    artifact_root: Path | None
    ui_url: str

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    @classmethod
    def from_settings(
        cls, services: ServicesSettings | None = None, ml: MLSettings | None = None
    ) -> TrackingConfig:
        services = services or get_services_settings()
        ml = ml or get_ml_settings()
        local_ui = ml.ui_url or f"http://{ml.ui_host}:{ml.ui_port}"
        if ml.tracking_uri:
            remote = ml.tracking_uri.startswith(("http://", "https://"))
            return cls(
                tracking_uri=ml.tracking_uri,
                artifact_root=ml.artifact_root,
                # A server's name among the services (http://mlflow:5000) may not be the browser's.
                ui_url=(ml.ui_url or ml.tracking_uri) if remote else local_ui,
            )
        return cls.for_database(
            resolve_endpoints(services).mlflow_database_url,
            artifact_root=ml.artifact_root or services.state_dir / "mlflow-artifacts",
            ui_url=local_ui,
        )

    @classmethod
    def for_database(
        cls, mlflow_database_url: str, *, artifact_root: Path, ui_url: str = "http://127.0.0.1:5000"
    ) -> TrackingConfig:
        return cls(tracking_uri=mlflow_database_url, artifact_root=artifact_root.resolve(), ui_url=ui_url)


# Feature set -> the marts its features come from, joined on (symbol, date): the project's own features,
# Qlib's Alpha158 (faithful to pyqlib's definitions), or both.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "default": ("marts.fct_stock_features",),
    "alpha158": ("marts.fct_alpha158",),
    "all": ("marts.fct_stock_features", "marts.fct_alpha158"),
}


@dataclass(frozen=True)
class DatasetConfig:
    horizon: int = 5
    # Normalized features and labels are clipped to this many cross-sectional standard deviations.
    clip: float = 5.0
    feature_set: str = "default"
    # What models are trained on: the target z-scored per date, or its per-date rank spread to unit
    # variance (Qlib's CSRankNorm), which fat-tailed returns cannot dominate.
    label: Literal["zscore", "rank"] = "rank"

    def __post_init__(self) -> None:
        if self.horizon not in (1, 5, 21):
            raise ValueError(f"marts.fct_forward_returns has horizons 1, 5 and 21, not {self.horizon}")
        if self.clip <= 0:
            raise ValueError("clip must be positive")
        if self.label not in ("zscore", "rank"):
            raise ValueError(f"label {self.label!r}: choose zscore or rank")
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature set {self.feature_set!r}: choose one of {', '.join(FEATURE_SETS)}")

    @property
    def features_tables(self) -> tuple[str, ...]:
        return FEATURE_SETS[self.feature_set]


@dataclass(frozen=True)
class WalkForwardConfig:
    """Expanding-window walk-forward over trading dates: n_folds consecutive test blocks at the end."""

    n_folds: int = 4
    test_days: int = 126
    validation_days: int = 63
    # Dates dropped between train and validation and between validation and test; None means the horizon.
    purge_days: int | None = None
    min_train_days: int = 252
    # Rolling instead of expanding training window when set.
    max_train_days: int | None = None

    def __post_init__(self) -> None:
        if min(self.n_folds, self.test_days, self.validation_days, self.min_train_days) < 1:
            raise ValueError("n_folds, test_days, validation_days and min_train_days must be at least 1")
        if self.max_train_days is not None and self.max_train_days < self.min_train_days:
            raise ValueError("max_train_days must be at least min_train_days")

    def purge(self, horizon: int) -> int:
        purge = horizon if self.purge_days is None else self.purge_days
        if purge < horizon:
            raise ValueError(
                f"purge_days {purge} is shorter than the label horizon {horizon}: labels would leak"
            )
        return purge


@dataclass(frozen=True)
class XGBoostConfig:
    objective: Literal["regression", "ranking"] = "regression"
    n_estimators: int = 300
    learning_rate: float = 0.05
    max_depth: int = 4
    min_child_weight: float = 50.0
    # Half the rows and features per tree: about half the time per round, and less fitting of noise.
    subsample: float = 0.5
    colsample_bytree: float = 0.5
    reg_lambda: float = 10.0
    max_bin: int = 64
    # Rounds without a better validation rank IC before boosting stops.
    early_stopping_rounds: int = 25
    # Fit on every k-th training date: labels of a multi-day horizon overlap, so neighbouring dates mostly
    # repeat each other; a fifth of them fits about five times faster. Which of each k dates the model
    # fits on is the seed's (seed mod k, counted back from the last), so seeds also differ in their dates.
    train_date_stride: int = 5
    # Relevance grades per date (quantiles of the target) for the ranking objective.
    ranking_grades: int = 5
    n_jobs: int | None = None
    seed: int = 7

    def __post_init__(self) -> None:
        if self.train_date_stride < 1:
            raise ValueError("train_date_stride must be at least 1")


@dataclass(frozen=True)
class LSTMConfig:
    sequence_length: int = 20
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    epochs: int = 8
    # Rows drawn (without replacement) for each epoch; None uses every training row.
    samples_per_epoch: int | None = 200_000
    batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    # Epochs without a better validation rank IC before training stops.
    patience: int = 3
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads while training and predicting; None keeps torch's default (one per core). Small models
    # run faster on one thread.
    n_threads: int | None = None
    seed: int = 7


@dataclass(frozen=True)
class ProphetConfig:
    forecast_days: int = 21
    # Trading days of price history each per-symbol model is fitted on.
    history_days: int = 756
    min_history_days: int = 126
    interval_width: float = 0.8
    uncertainty_samples: int = 200
    changepoint_prior_scale: float = 0.05
    # A year's seasonality fitted on a few years of one stock's prices is noise.
    yearly_seasonality: bool = False
    weekly_seasonality: bool = True
    # Worker processes; None means one per core.
    n_jobs: int | None = None
    symbols_per_task: int = 8
    seed: int = 7


ModelConfig = XGBoostConfig | LSTMConfig | ProphetConfig
# Families whose fit depends on its seed: they train once per seed of MLSettings.seeds (Prophet's is
# deterministic).
STOCHASTIC_FAMILIES = frozenset({"xgboost", "lstm"})


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run depends on besides the data, as logged in config.json."""

    model: ModelConfig
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    walk_forward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
