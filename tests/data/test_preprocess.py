import torch

from cnnlab.data.preprocess import Preprocessing, channel_stats, fit_preprocessing


def test_mnist_digits_are_zero_padded_to_32_before_normalising(subset):
    prep = fit_preprocessing(subset.train, (1, 32, 32))
    assert prep.image_size == (28, 28) and prep.input_size == (32, 32)
    x = prep(subset.train.images[:8])
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32
    background = (0 - prep.mean[0]) / prep.std[0]
    # two rows/columns of padding on each side carry the background value
    assert torch.allclose(x[:, :, :2, :], torch.tensor(background))
    assert torch.allclose(x[:, :, :, -2:], torch.tensor(background))
    expected = (subset.train.images[:8].float() / 255 - prep.mean[0]) / prep.std[0]
    assert torch.allclose(x[:, :, 2:30, 2:30], expected, atol=1e-5)


def test_statistics_match_a_direct_computation(subset):
    mean, std = channel_stats(subset.train.images)
    pixels = subset.train.images.double() / 255
    assert abs(mean[0] - pixels.mean().item()) < 1e-5
    assert abs(std[0] - pixels.std().item()) < 1e-5


def test_round_trips_through_json():
    prep = Preprocessing((0.1, 0.2, 0.3), (0.5, 0.5, 0.5), (30, 30), (32, 32), 3)
    assert Preprocessing.from_dict(prep.to_dict()) == prep
