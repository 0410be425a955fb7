"""The review of quarantined chunks: what the reviewer is shown, and what each answer asks for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from voicebatch.errors import InputError
from voicebatch.run.retake import ChunkEdit
from voicebatch.run.review import ACTIONS, DEFAULT_ACTION, DROP, EDIT_TEXT, NEW_SEED, decide, review_body, review_items

ROOT = Path(__file__).resolve().parent.parent


def report() -> dict:
    take = {"take": 1, "transcript": "hello their", "cer": 0.25, "diff": [["replace", "there", "their"]]}
    return {
        "scripts": [
            {
                "script_id": "hello",
                "status": "published",
                "manifest_key": "audio/hello/abc/manifest.json",
                "quarantined": [
                    {
                        "index": 1,
                        "text": "Hello there.",
                        "kept_take": 1,
                        "takes": [{**take, "audio_key": "runs/t.wav"}],
                    },
                    {"index": 3, "text": "[x](javascript:alert(1)) <b>", "kept_take": 1, "takes": [take]},
                ],
            },
            {"script_id": "held", "status": "held", "manifest_key": None, "quarantined": [{"index": 0, "takes": []}]},
        ]
    }


def test_review_lists_each_quarantined_chunk_of_published_scripts_only() -> None:
    items = review_items(report())
    assert [(i["name"], i["manifest_key"], i["transcript"], i["audio_key"]) for i in items] == [
        ("hello#1", "audio/hello/abc/manifest.json", "hello their", "runs/t.wav"),
        ("hello#3", "audio/hello/abc/manifest.json", "hello their", None),
    ]


def test_the_review_text_links_each_take_and_shows_script_text_as_text() -> None:
    body = review_body(review_items(report()), lambda key: f"/voicebatch/runs/d/r/files/{key}")
    assert "[listen to the take](/voicebatch/runs/d/r/files/runs/t.wav)" in body
    assert "- heard: hello their, CER 0.25" in body and "replace: there → their" in body
    # Markdown and HTML from a script stay text: no link, no tag.
    assert "](javascript" not in body and "<b>" not in body
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\) &lt;b&gt;" in body


@pytest.mark.parametrize(
    ("chosen", "answer", "expected"),
    [
        ([DEFAULT_ACTION], {}, {}),
        ([NEW_SEED], {"chunks": "hello#1"}, {"audio/hello/abc/manifest.json": [ChunkEdit(1)]}),
        ([NEW_SEED], {"chunks": ""}, {"audio/hello/abc/manifest.json": [ChunkEdit(1), ChunkEdit(3)]}),
        ([DROP], {"chunks": "hello#3"}, {"audio/hello/abc/manifest.json": [ChunkEdit(3, drop=True)]}),
        (
            [EDIT_TEXT],
            {"chunks": "hello#1", "text": " Hello, there. "},
            {"audio/hello/abc/manifest.json": [ChunkEdit(1, text="Hello, there.")]},
        ),
    ],
)
def test_each_answer_becomes_its_retakes(chosen: list, answer: dict, expected: dict) -> None:
    assert decide(review_items(report()), chosen, answer) == expected


@pytest.mark.parametrize(
    ("chosen", "answer", "message"),
    [
        ([NEW_SEED], {"chunks": "hello#2"}, "review: chunks hello#2 are not under review: use hello#1, hello#3"),
        ([EDIT_TEXT], {"chunks": "", "text": "Hi."}, "review: re-take with edited text needs one chunk in Chunks"),
        ([EDIT_TEXT], {"chunks": "hello#1"}, "review: re-take with edited text needs one chunk in Chunks"),
        (["maybe"], {}, "review: unknown action 'maybe'"),
    ],
)
def test_an_answer_that_cannot_be_carried_out_is_one_line(chosen: list, answer: dict, message: str) -> None:
    with pytest.raises(InputError) as raised:
        decide(review_items(report()), chosen, answer)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_the_plugins_fallback_actions_are_the_librarys() -> None:
    """The control image has no voicebatch library: the plugin's own copy must not drift."""
    tree = ast.parse((ROOT / "plugins" / "voicebatch_review.py").read_text())
    handler = next(n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler))
    values = {t.id: ast.literal_eval(a.value) for a in handler.body if isinstance(a, ast.Assign) for t in a.targets}
    assert values == {"ACTIONS": ACTIONS, "DEFAULT_ACTION": DEFAULT_ACTION}
