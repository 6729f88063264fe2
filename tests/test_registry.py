import pytest

from emobench.controller import create_controller
from emobench.errors import EmoBenchError, PluginLoadError, UnknownPluginError
from emobench.registry import CLASSIFIERS, CONTROLLERS, installed


def test_builtins_register_through_entry_points():
    controllers = installed(CONTROLLERS)
    assert {"none", "prompt"} <= set(controllers)
    assert controllers["prompt"].target == "emobench.controllers.prompt:PromptController"
    assert controllers["prompt"].distribution == "emobench"
    assert "minilm" in installed(CLASSIFIERS)


def test_unknown_controller_lists_installed_and_suggests():
    with pytest.raises(UnknownPluginError) as err:
        create_controller("promt")
    msg = str(err.value)
    assert "unknown controller 'promt'" in msg
    assert "none" in msg and "prompt" in msg
    assert "Did you mean 'prompt'?" in msg


def test_spec_records_arguments_with_defaults():
    c = create_controller("prompt")
    spec = c.spec()
    assert spec["name"] == "prompt"
    assert spec["args"]["template"].startswith("Always reply in {emotion}.")
    custom = create_controller("prompt", template="Be {emotion}.")
    assert custom.spec()["args"] == {"template": "Be {emotion}."}
    # A default given by hand is the same setting as nothing given: one leaderboard row.
    assert spec["changed"] == {} and custom.spec()["changed"] == {"template": "Be {emotion}."}
    same = create_controller("prompt", template=spec["args"]["template"]).spec()
    assert same["given"] == {"template": spec["args"]["template"]} and same["changed"] == {}


def test_the_spec_changes_with_the_controller_code(tmp_path, monkeypatch):
    """A plugin edited between two runs (an editable install) records another code hash, and
    the journal, which keys on the spec, does not hand the new code the old code's replies."""
    import importlib

    from emobench.controller import code_sha256

    module = tmp_path / "edited_plugin.py"
    source = "from emobench.controller import Controller\n\nclass Edited(Controller):\n"
    module.write_text(source + "    name = 'edited'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = create_controller("edited_plugin:Edited").spec()
    module.write_text(source + "    name = 'edited'\n    # a new line of code\n")
    importlib.reload(importlib.import_module("edited_plugin"))
    second = create_controller("edited_plugin:Edited").spec()
    assert first["code_sha256"] and first["code_sha256"] != second["code_sha256"]
    assert code_sha256(int) is None  # a built-in class has no source file


def test_a_controller_without_arguments_records_none():
    assert create_controller("none").spec()["args"] == {}
    with pytest.raises(PluginLoadError, match="takes no arguments"):
        create_controller("none", alpha=1)


def test_bad_arguments_name_the_accepted_ones():
    with pytest.raises(PluginLoadError, match="does not take argument"):
        create_controller("prompt", alpha=3)
    with pytest.raises(EmoBenchError, match=r"template='no placeholder' must contain the placeh"):
        create_controller("prompt", template="no placeholder")
    # A bug in a constructor (not a refusal) says where it was raised.
    with pytest.raises(PluginLoadError, match=r"\(raised at .*plugins_for_tests.py:\d+\)$"):
        create_controller("tests.plugins_for_tests:BrokenInitController")
    # Raised inside a library the plugin called: the plugin's line, not the library's.
    with pytest.raises(PluginLoadError, match=r"\(raised at .*plugins_for_tests.py:\d+\)$"):
        create_controller("tests.plugins_for_tests:LibraryErrorController")


def test_module_path_plugins_load():
    c = create_controller("tests.plugins_for_tests:MarkerController")
    assert c.spec()["class"] == "tests.plugins_for_tests:MarkerController"
    with pytest.raises(PluginLoadError, match="cannot import"):
        create_controller("tests.plugins_for_tests:Nope")


def test_prompt_controller_rewrites_the_system_message(test_docs):
    from emobench.chat import base_messages

    doc = test_docs[3]
    msgs = create_controller("prompt").messages(doc, base_messages(doc))
    assert msgs[0] == {
        "role": "system",
        "content": f"Always reply in {doc['target_emotion']}.\n"
        "Keep the reply to at most two sentences.",
    }
    assert msgs[1]["content"] == f"{doc['scenario']}\n{doc['event']}"
    assert len(msgs) == 2


def test_a_count_must_be_a_whole_number():
    from emobench.controller import whole_number

    assert whole_number("c", "layer", "3") == 3 and whole_number("c", "layer", 4.0) == 4
    assert whole_number("c", "seed", 2**53 + 1) == 2**53 + 1  # no trip through a float
    assert whole_number("c", "seed", str(2**53 + 1)) == 2**53 + 1
    for bad, message in ((2.7, "is not a whole number"), ("x", "is not a number")):
        with pytest.raises(EmoBenchError, match=f"c: layer={bad!r} {message}"):
            whole_number("c", "layer", bad)
    with pytest.raises(EmoBenchError, match=r"ablate: top=2.5 is not a whole number"):
        create_controller("ablate", attribute="valence", top=2.5)
