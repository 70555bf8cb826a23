"""An on-disk near-duplicate index: deduplicate a new corpus against every corpus indexed before.

``INDEX/params.json`` holds the experts' settings (a new corpus must be signed the same way; written once) and
``INDEX/index.npz`` everything else in one file, replaced atomically so a kill never leaves ids and signatures
out of step: ``sig.<expert>`` (row i = document i), ``state.<expert>.<name>`` (what an expert learned, e.g.
cosine's idf — fitted on the first corpus and kept, so every corpus is signed in one vector space), and the
ids as one UTF-8 blob with offsets. Only survivors are added: the index holds one document per cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gniazdo.dedup.expert import Expert
from gniazdo.dedup.run import NearDedupParams
from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open, write_json_atomic


def _pack_ids(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [i.encode("utf-8") for i in ids]
    offsets = np.cumsum([0, *map(len, encoded)]).astype(np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _unpack_ids(blob: np.ndarray, offsets: np.ndarray) -> list[str]:
    data = blob.tobytes()
    return [data[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


class DedupIndex:
    def __init__(self, path: str | Path, params: NearDedupParams) -> None:
        self.path = Path(path)
        self.params = params
        self.ids: list[str] = []
        self.signatures: dict[str, np.ndarray] = {}
        self.state: dict[str, dict[str, np.ndarray]] = {}
        if (self.path / "params.json").exists():
            self._load()

    def _load(self) -> None:
        saved = json.loads((self.path / "params.json").read_text(encoding="utf-8"))
        if saved != self.params.model_dump(mode="json"):
            raise UserError(f"{self.path}: the index was built with other dedup settings; use the same settings "
                            f"(see {self.path / 'params.json'}) or a new index")
        if not (self.path / "index.npz").exists():
            return
        with np.load(self.path / "index.npz") as z:
            self.ids = _unpack_ids(z["ids_blob"], z["ids_offsets"])
            for key in z.files:
                kind, _, rest = key.partition(".")
                if kind == "sig":
                    self.signatures[rest] = z[key]
                elif kind == "state":
                    expert, _, name = rest.partition(".")
                    self.state.setdefault(expert, {})[name] = z[key]

    def __len__(self) -> int:
        return len(self.ids)

    def forget(self, ids: set[str]) -> None:
        """Drop these ids (in memory; saved by the next :meth:`add`). Re-running a corpus after a kill that
        came after its survivors were indexed must not match the corpus against itself."""
        keep = np.array([i not in ids for i in self.ids], dtype=bool)
        if keep.all():
            return
        self.ids = [i for i, k in zip(self.ids, keep) if k]
        self.signatures = {name: sig[keep] for name, sig in self.signatures.items()}

    def restore(self, experts: list[Expert]) -> None:
        """Give the experts what they learned when the index was started."""
        for e in experts:
            if e.name in self.state:
                e.load_state(self.state[e.name])

    def add(self, experts: list[Expert], ids: list[str], signatures: dict[str, np.ndarray]) -> None:
        """Append documents (survivors) and save the whole index."""
        self.ids += ids
        for name, sig in signatures.items():
            old = self.signatures.get(name)
            self.signatures[name] = sig if old is None else np.concatenate([old, sig])
        self.state = {e.name: e.state() for e in experts if e.state()}
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / "params.json").exists():
            write_json_atomic(self.path / "params.json", self.params.model_dump(mode="json"))
        blob, offsets = _pack_ids(self.ids)
        arrays = {"ids_blob": blob, "ids_offsets": offsets, **{f"sig.{k}": v for k, v in self.signatures.items()},
                  **{f"state.{e}.{k}": v for e, st in self.state.items() for k, v in st.items()}}
        with atomic_open(self.path / "index.npz") as f:
            np.savez(f, **arrays)
