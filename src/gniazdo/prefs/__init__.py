"""Preference data for DPO / DPOP / IPO / ORPO: pairs → token sequences with answer masks (done once, offline),
and the reference model's log-probs computed once beforehand (ALLaMo's approach), so training holds only the policy.

    from gniazdo.prefs import prepare_prefs, compute_reference, PreferenceDataset
    prepare_prefs("tok/pl32k", ["prefs.jsonl"], "prefs/", max_len=1024)
    compute_reference("models/sft", "prefs/")                     # or compute_reference_from_server(url, name, ...)
    pair = PreferenceDataset("prefs/").pair(0)                    # chosen / rejected arrays + ref_chosen / ref_rejected
"""

from gniazdo.prefs.dataset import IGNORE, PreferenceDataset, read_meta
from gniazdo.prefs.prepare import TRUNCATION, parse_pair, prepare_prefs
from gniazdo.prefs.reference import compute_reference, compute_reference_from_server, sequence_logps

__all__ = ["prepare_prefs", "parse_pair", "TRUNCATION", "PreferenceDataset", "read_meta", "IGNORE",
           "compute_reference", "compute_reference_from_server", "sequence_logps"]
