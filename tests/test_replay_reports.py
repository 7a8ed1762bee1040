"""A sweep's report.json is its best point's kept report with a ``sweep`` section put in: ``json_text.with_key``
gives, from the kept report's text, the bytes ``dumps_report`` writes for the report plus the section (what
loading the file, adding the key and writing it again gave), for generated documents and a real kept report."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.reporting.json_text import canonical_json, with_key
from engine.reporting.report import dumps_report, with_sweep_section
from tests.test_json_text import documents, dumps_reference, texts

top_keys = st.one_of(texts, st.sampled_from(["sweep", "a", "zzzz", "", "trades", "sweep\n", "é", "\ud800"]))
top_docs = st.dictionaries(top_keys, documents, max_size=8)


@settings(max_examples=300, deadline=None)
@given(doc=top_docs, key=top_keys, value=documents)
def test_a_key_put_into_a_canonical_text_gives_the_text_of_the_merged_document(doc: dict[str, Any], key: str,
                                                                               value: Any) -> None:
    for end in ("", "\n"):
        text = canonical_json(doc, end)
        got = with_key(text, key, value, end)
        if key in doc or not doc:
            assert got is None  # not such a text: the caller writes the merged document itself
            continue
        assert got == canonical_json({**doc, key: value}, end) == dumps_reference({**doc, key: value}) + end


def test_the_sweep_section_gives_what_loading_and_writing_again_gave() -> None:
    report = {"schema_version": 1, "run_id": "r", "strategy": "s", "trades": [{"a": 1.5, "b": "x"}] * 3,
              "orders": [], "warnings": ["w\u00e9"], "data": {"symbols": {"ZZZ": {"rows": 3}}}}
    section = {"sweep_id": "sweep-x", "metric": "sharpe", "points_tried": 1, "note": "report of the best point"}
    text = dumps_report(report)
    loaded = json.loads(text)
    loaded["sweep"] = section
    assert with_sweep_section(text, section) == dumps_report(loaded)
    assert with_sweep_section(dumps_report({**report, "sweep": {}}), section) is None  # already there
    assert with_sweep_section("{}\n", section) is None
