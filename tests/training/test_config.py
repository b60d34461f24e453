import math

import pytest

from cnnlab.errors import ConfigError
from cnnlab.training.config import TrainConfig


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lr": 0.0}, r"learning rate > 0, received lr=0.0"),
        ({"lr": math.nan}, r"received lr=nan"),
        ({"lr": -1.0}, r"received lr=-1.0"),
        ({"optimizer": "adagrad"}, r"expected optimizer in sgd, .*received optimizer='adagrad'"),
        ({"schedule": "linear"}, r"received schedule='linear'"),
        ({"epochs": 0}, r"received epochs=0"),
        ({"batch_size": 2.5}, r"received batch_size=2.5"),
        ({"val_split": 1.0}, r"received val_split=1.0"),
        ({"val_split": 0.0}, r"monitor 'loss' or 'accuracy' without a validation split"),
        ({"label_smoothing": 1.0}, r"label_smoothing=1.0"),
        ({"device": "tpu"}, r"received device='tpu'"),
    ],
)
def test_impossible_values_are_rejected_with_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig(**options)
    assert "\n" not in str(info.value)


def test_round_trip():
    config = TrainConfig(lr=0.01, model_kwargs={"activation": "tanh"})
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="bogus"):
        TrainConfig.from_dict({**config.to_dict(), "bogus": 1})
