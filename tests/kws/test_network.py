"""The spotter network and its ensemble (torch, training only): an ensemble's logit is the mean of its
members', and it exports to the same ONNX inputs and outputs that the runtime reads."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from services.kws.export import base_metadata, export_onnx  # noqa: E402
from services.kws.features import N_MELS  # noqa: E402
from services.kws.model import SpotterModel  # noqa: E402
from services.kws.network import CHANNELS, SpotterEnsemble, SpotterNet, context_frames  # noqa: E402


def random_net(seed: int) -> SpotterNet:
    torch.manual_seed(seed)
    net = SpotterNet(torch.randn(N_MELS), torch.rand(N_MELS) + 0.5)
    with torch.no_grad():
        net.head.bias.fill_(seed / 10)
    return net.eval()


def test_ensemble_logit_is_the_mean_of_its_members():
    members = [random_net(seed) for seed in (1, 2, 3)]
    features = torch.randn(2, 120, N_MELS)
    with torch.no_grad():
        expected = torch.stack([member.logits(features) for member in members]).mean(dim=0)
        assert torch.allclose(SpotterEnsemble(members).logits(features), expected, atol=1e-5)


def test_exported_ensemble_scores_and_stacks_member_embeddings(tmp_path: Path):
    members = [random_net(seed) for seed in (4, 5)]
    ensemble = SpotterEnsemble(members).eval()
    path = tmp_path / "ensemble.onnx"
    export_onnx(ensemble, path, base_metadata("test+ensemble", context_frames(), 20.0, 10.0))
    model = SpotterModel(path)
    features = np.random.default_rng(6).standard_normal((250, N_MELS)).astype(np.float32)
    with torch.no_grad():
        expected = ensemble(torch.from_numpy(features)[None])[0].numpy()
        member_embeddings = [member.embeddings(torch.from_numpy(features)[None])[0] for member in members]
    np.testing.assert_allclose(model.frame_scores(features), expected, atol=1e-5)
    embeddings = model.frame_embeddings(features)
    assert embeddings.shape == (len(expected), CHANNELS * len(members))
    np.testing.assert_allclose(embeddings, torch.cat(member_embeddings).T.numpy(), atol=1e-4)
