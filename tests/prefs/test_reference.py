"""Reference log-probs: from a model folder (checked against transformers), from an OpenAI-compatible server (a fake
one on 127.0.0.1 serving the same tiny model), and the ``gniazdo prefs`` commands end to end."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from conftest import serving

from gniazdo.cli import main
from gniazdo.errors import UserError
from gniazdo.prefs import IGNORE, PreferenceDataset, compute_reference, compute_reference_from_server, prepare_prefs
from gniazdo.resources import sample_path

from . import model_dir, tok_dir  # noqa: F401 (fixtures)

SAMPLE = sample_path("preferences.jsonl")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tok_dir):
    out = tmp_path_factory.mktemp("prefs-ref") / "p"
    prepare_prefs(tok_dir, [SAMPLE], out, max_len=4096, val_fraction=0.25, progress=False)
    return out


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _values(folder) -> dict[str, np.ndarray]:
    return {s: np.load(folder / s / "ref_logps.npy") for s in ("train", "val")}


def test_reference_equals_transformers(model_dir, prepared, tmp_path):
    from transformers import AutoModelForCausalLM

    out = _copy(prepared, tmp_path / "p")
    meta = compute_reference(model_dir, out, batch_size=4, progress=False)
    ref = meta["reference"]
    assert ref["source"] == "model" and ref["dtype"] == "float32" and ref["model"] == str(model_dir)
    assert len(ref["sha256"]) == 64
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    for split in ("train", "val"):
        ds = PreferenceDataset(out, split)
        assert ds.has_reference and ds.n_pairs > 0
        for i in range(0, ds.n_pairs, 3):  # a third of the pairs: HF's eager forward is slow on 2 CPU cores
            pair = ds.pair(i)
            for side, key in (("chosen", "ref_chosen"), ("rejected", "ref_rejected")):
                ids, labels = (torch.from_numpy(pair[side][k])[None] for k in ("input_ids", "labels"))
                with torch.no_grad():
                    logp = torch.log_softmax(hf(ids).logits.float(), -1)[0]
                mask = labels[0] != IGNORE
                direct = logp[mask].gather(-1, labels[0][mask][:, None]).double().sum().item()  # fp64 sum, as stored
                assert abs(pair[key] - direct) < 1e-4, (split, i, side)
                assert direct < -1.0  # real, varied log-probs, not a vacuous comparison
        assert len(set(np.round(ds.ref_logps[:, 0], 3))) > 1


def test_batching_and_padding_do_not_change_values(model_dir, prepared, tmp_path):
    one = _copy(prepared, tmp_path / "one")
    four = _copy(prepared, tmp_path / "four")
    compute_reference(model_dir, one, batch_size=1, progress=False)
    compute_reference(model_dir, four, batch_size=5, progress=False)  # odd size: pairs split across batches
    a, b = _values(one), _values(four)
    for split in a:
        # (sums over hundreds of tokens: fp32 rounding of different attention kernels is ~1e-8 relative)
        np.testing.assert_allclose(a[split], b[split], rtol=1e-7, atol=1e-5)


def test_tokenizer_mismatch_is_a_user_error(model_dir, prepared, tmp_path):
    other = _copy(model_dir, tmp_path / "model")
    tok = json.loads((other / "tokenizer.json").read_text(encoding="utf-8"))
    tok["added_tokens"][0]["content"] = "<S>"
    (other / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    with pytest.raises(UserError, match="differs from the tokenizer the data was prepared with") as e:
        compute_reference(other, prepared, progress=False)
    assert "\n" not in str(e.value)
    (other / "tokenizer.json").unlink()
    with pytest.raises(UserError, match="no tokenizer.json"):
        compute_reference(other, prepared, progress=False)


# -- a fake OpenAI-compatible server ------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, obj: dict) -> None:
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        srv: _Server = self.server  # type: ignore[assignment]
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append((self.path, dict(self.headers), request))
            fail = srv.fail.pop(0) if srv.fail else None
        if fail is not None:
            self._send(fail, {"error": {"message": f"injected {fail}", "type": "BadRequestError"}})
            return
        if self.path != "/v1/completions" or request.get("model") != "tiny":
            self._send(404, {"error": {"message": f"The model `{request.get('model')}` does not exist."}})
            return
        prompts = request["prompt"] if isinstance(request["prompt"], list) else [request["prompt"]]
        choices = [{"index": i, "text": text, "finish_reason": "length", "logprobs": srv.logprobs(text)}
                   for i, text in enumerate(prompts)]
        self._send(200, {"object": "text_completion", "model": "tiny", "choices": choices[::-1]})  # any order


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model_dir) -> None:
        from tokenizers import Tokenizer

        from gniazdo.model import from_pretrained

        super().__init__(("127.0.0.1", 0), _Handler)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.model = from_pretrained(model_dir, dtype=torch.float32)
        self.requests: list = []
        self.fail: list[int] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def logprobs(self, text: str) -> dict:
        """What vLLM echoes: each prompt token, its log-prob given the tokens before it (None for the first), and
        the character offset where it starts."""
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        ids = torch.tensor([enc.ids])
        with torch.no_grad(), self.lock:
            logp = torch.log_softmax(self.model(ids).float(), -1)[0]
        values = [None] + [logp[k - 1, enc.ids[k]].item() for k in range(1, len(enc.ids))]
        return {"tokens": enc.tokens, "token_logprobs": values, "text_offset": [o[0] for o in enc.offsets],
                "top_logprobs": None}


pytestmark = pytest.mark.usefixtures("no_proxy")  # the servers here are on 127.0.0.1


@pytest.fixture
def server(model_dir):
    srv = _Server(model_dir)
    with serving(srv):
        yield srv


def test_server_equals_model_path(server, model_dir, prepared, tmp_path):
    local = _copy(prepared, tmp_path / "local")
    remote = _copy(prepared, tmp_path / "remote")
    compute_reference(model_dir, local, progress=False)
    server.fail = [503]  # one transient failure: retried
    meta = compute_reference_from_server(server.url, "tiny", remote, api_key="sekret", batch_size=3,
                                         concurrency=2, backoff=0.01, progress=False)
    assert meta["reference"]["source"] == "server" and meta["reference"]["model"] == "tiny"
    a, b = _values(local), _values(remote)
    for split in a:
        np.testing.assert_allclose(b[split], a[split], rtol=0, atol=1e-4)
    path, headers, body = server.requests[-1]
    assert path == "/v1/completions" and headers["Authorization"] == "Bearer sekret"
    assert body["max_tokens"] == 0 and body["echo"] is True and body["logprobs"] == 1 and body["model"] == "tiny"
    assert body["add_special_tokens"] is False
    assert len(server.requests) == 1 + sum(-(-2 * len(v) // 3) for v in a.values())


def test_server_4xx_is_a_one_line_user_error(server, prepared, tmp_path):
    out = _copy(prepared, tmp_path / "p")
    with pytest.raises(UserError) as e:
        compute_reference_from_server(server.url, "nope", out, concurrency=1, progress=False)
    assert "HTTP 404" in str(e.value) and "The model `nope` does not exist." in str(e.value)
    assert "\n" not in str(e.value) and len(server.requests) == 1  # not retried
    server.fail = [400]
    with pytest.raises(UserError, match="HTTP 400 .*injected 400"):
        compute_reference_from_server(server.url + "/v1", "tiny", out, progress=False)
    assert not (out / "train" / "ref_logps.npy").exists()


def test_server_down_fails_after_retries(prepared, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="failed after 3 attempts"):
        compute_reference_from_server(f"http://127.0.0.1:{port}", "tiny", _copy(prepared, tmp_path / "p"),
                                      retries=2, backoff=0.01, progress=False)


# -- the commands ---------------------------------------------------------------------------------------------
def _main(*args) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return e.code
    return 0


def test_cli_end_to_end(model_dir, tok_dir, tmp_path, capsys, server):
    out = tmp_path / "p"
    assert _main("prefs", "prepare", "--tokenizer", tok_dir, "--data", SAMPLE, "--out", out, "--max-len", 200,
                 "--truncation", "truncate_prompt", "--val-fraction", 0.2, "--no-progress") == 0
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    c = meta["counts"]
    assert c["train"] + c["val"] == c["kept"] > 0 and meta["max_len"] == 200 and meta["reference"] is None
    assert f"{c['kept']} of 64 pairs kept" in capsys.readouterr().out

    ino = (out / "train" / "tokens.npy").stat().st_ino
    assert _main("prefs", "reference", "--model", model_dir, "--data", SAMPLE, "--out", out, "--max-len", 200,
                 "--truncation", "truncate_prompt", "--val-fraction", 0.2, "--batch-size", 4, "--no-progress") == 0
    assert (out / "train" / "tokens.npy").stat().st_ino == ino  # the same data: the prepared folder is reused
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["reference"]["source"] == "model"
    ds = PreferenceDataset(out)
    assert ds.has_reference and np.all(ds.ref_logps[:] < 0) and "ref_chosen" in ds.pair(0)
    local = _values(out)

    srv_out = tmp_path / "s"
    assert _main("prefs", "reference", "--server", server.url, "--server-model", "tiny", "--tokenizer", tok_dir,
                 "--data", SAMPLE, "--out", srv_out, "--max-len", 200, "--truncation", "truncate_prompt",
                 "--val-fraction", 0.2, "--no-progress") == 0
    for split, values in _values(srv_out).items():
        # truncated prompts are re-tokenized from their text by the server: equal whenever the cut fell
        # between pre-tokens, which it does for most pairs
        close = np.isclose(values, local[split], rtol=0, atol=1e-4)
        assert close.mean() > 0.5

    capsys.readouterr()
    assert _main("prefs", "reference", "--server", server.url, "--data", SAMPLE, "--out", srv_out) == 2
    assert "--server needs --server-model and --tokenizer" in capsys.readouterr().err
    assert _main("prefs", "prepare", "--tokenizer", tok_dir, "--data", tmp_path / "missing.jsonl",
                 "--out", tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert err.startswith("gniazdo: error: input not found") and len(err.strip().splitlines()) == 1
