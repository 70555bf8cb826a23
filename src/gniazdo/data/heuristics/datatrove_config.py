"""Our heuristic thresholds as datatrove's filters, for the parity test and ``bench/data_pipeline.py``.

Needs the dev extra (``datatrove`` and ``spacy``: datatrove splits Polish words with ``spacy.blank("pl")``);
nothing in the pipeline imports this module. datatrove turns a rule off with 0 (and short lines with a
threshold no ratio reaches), where our params use null.
"""

from __future__ import annotations

from typing import Any

from gniazdo.data.heuristics.fineweb import FineWebQualityParams
from gniazdo.data.heuristics.gopher import GopherQualityParams, GopherRepetitionParams


def datatrove_filters(rep: GopherRepetitionParams, fw: FineWebQualityParams,
                      q: GopherQualityParams) -> dict[str, Any]:
    """datatrove's GopherRepetitionFilter, FineWebQualityFilter and GopherQualityFilter configured like ours."""
    from datatrove.pipeline import filters

    return {
        "gopher_repetition": filters.GopherRepetitionFilter(
            dup_line_frac=rep.dup_line_frac or 0, dup_para_frac=rep.dup_para_frac or 0,
            dup_line_char_frac=rep.dup_line_char_frac or 0, dup_para_char_frac=rep.dup_para_char_frac or 0,
            top_n_grams=tuple(rep.top_n_grams), dup_n_grams=tuple(rep.dup_n_grams), language="pl"),
        "fineweb_quality": filters.FineWebQualityFilter(
            line_punct_thr=fw.line_punct_thr, line_punct_exclude_zero=fw.line_punct_exclude_zero,
            short_line_thr=fw.short_line_thr or 999, short_line_length=fw.short_line_length,
            char_duplicates_ratio=fw.char_duplicates_ratio, new_line_ratio=fw.new_line_ratio, language="pl"),
        "gopher_quality": filters.GopherQualityFilter(
            min_doc_words=q.min_doc_words, max_doc_words=q.max_doc_words,
            min_avg_word_length=q.min_avg_word_length, max_avg_word_length=q.max_avg_word_length,
            max_symbol_word_ratio=q.max_symbol_word_ratio, max_bullet_lines_ratio=q.max_bullet_lines_ratio,
            max_ellipsis_lines_ratio=q.max_ellipsis_lines_ratio, max_non_alpha_words_ratio=q.min_alpha_words_ratio,
            min_stop_words=q.min_stop_words, stop_words=q.stop_words, language="pl"),
    }
