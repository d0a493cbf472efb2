"""The generic Registry: registration rules, lookup errors, hyperparameter introspection."""

from __future__ import annotations

import inspect

import pytest

from dlbench.errors import ConfigError
from dlbench.registry import Choice, Registry


@pytest.fixture
def things() -> Registry:
    reg: Registry = Registry("thing")

    @reg.register("widget", description="A widget", size=(1, 2))
    def widget(base: int, /, *, scale: float = 2.0, offset: float = 0.0) -> float:
        return base * scale + offset

    @reg.register("gadget", description="A gadget")
    def gadget(*, lr: float, beta: float = 0.5) -> tuple[float, float]:
        return (lr, beta)

    @reg.register("plain", description="No hyperparameters")
    def plain() -> str:
        return "plain"

    return reg


def test_register_returns_factory_unchanged() -> None:
    reg: Registry = Registry("thing")

    def f(*, a: int = 1) -> int:
        return a

    assert reg.register("f", description="f")(f) is f
    assert reg.get("f").factory is f


def test_create_passes_positional_and_keyword_arguments(things: Registry) -> None:
    assert things.create("widget", 3) == 6.0
    assert things.create("widget", 3, scale=10.0, offset=1.0) == 31.0
    assert things.create("gadget", lr=0.1) == (0.1, 0.5)
    assert things.create("plain") == "plain"


def test_a_choice_carries_its_hyperparameters_to_create(things: Registry) -> None:
    choice = Choice("widget", {"scale": 10.0})
    assert str(choice) == "widget" and things.get(choice).name == "widget"
    assert things.create(choice, 3) == 30.0
    assert things.create(choice, 3, offset=1.0) == 31.0  # the caller's kwargs are added
    with pytest.raises(ConfigError, match="takes no size"):
        things.create(Choice("widget", {"size": 1}), 3)


def test_names_are_sorted_and_len_contains_iter(things: Registry) -> None:
    assert things.names() == ["gadget", "plain", "widget"]
    assert len(things) == 3
    assert "widget" in things
    assert "nope" not in things
    assert [entry.name for entry in things] == ["gadget", "plain", "widget"]


def test_describe_maps_sorted_names_to_descriptions(things: Registry) -> None:
    described = things.describe()
    assert described == {"gadget": "A gadget", "plain": "No hyperparameters", "widget": "A widget"}
    assert list(described) == things.names()


def test_flags_are_stored(things: Registry) -> None:
    assert things.get("widget").flags == {"size": (1, 2)}
    assert things.get("gadget").flags == {}


def test_hyperparameters_are_keyword_only_with_defaults(things: Registry) -> None:
    # ``base`` is positional-only: the caller's argument, not a hyperparameter.
    assert things.get("widget").hyperparameters == {"scale": 2.0, "offset": 0.0}
    # A required keyword-only argument is listed with no default.
    assert things.get("gadget").hyperparameters == {"lr": inspect.Parameter.empty, "beta": 0.5}
    assert things.get("plain").hyperparameters == {}


def test_hyperparameters_exclude_positional_or_keyword() -> None:
    reg: Registry = Registry("thing")

    @reg.register("mixed", description="mixed")
    def mixed(a: int, b: int = 2, *args: int, c: int = 3, **kwargs: int) -> int:
        return a + b + c

    assert reg.get("mixed").hyperparameters == {"c": 3}


def test_unknown_name_raises_config_error_with_close_matches(things: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        things.get("widgit")
    message = str(info.value)
    assert "unknown thing 'widgit'" in message
    assert "did you mean widget" in message
    assert "allowed: gadget, plain, widget" in message


def test_unknown_name_without_close_match_still_lists_allowed(things: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        things.create("zzzzzz")
    message = str(info.value)
    assert "did you mean" not in message
    assert "allowed: gadget, plain, widget" in message


def test_config_error_is_a_value_error(things: Registry) -> None:
    with pytest.raises(ValueError):
        things.get("nope")


def test_unknown_hyperparameter_raises_config_error(things: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        things.create("widget", 3, scael=1.0)
    message = str(info.value)
    assert "scael" in message
    assert "scale" in message and "offset" in message


def test_hyperparameter_on_entry_without_any(things: Registry) -> None:
    with pytest.raises(ConfigError, match="allowed: none"):
        things.create("plain", x=1)


def test_duplicate_registration_raises_value_error(things: Registry) -> None:
    with pytest.raises(ValueError, match="twice"):
        things.register("widget", description="again")
    # The original entry is untouched.
    assert things.get("widget").description == "A widget"


@pytest.mark.parametrize("name", ["Widget", "my-thing", "1thing", "_thing", "thing name", ""])
def test_non_snake_case_names_raise_value_error(name: str) -> None:
    reg: Registry = Registry("thing")
    with pytest.raises(ValueError, match="snake_case"):
        reg.register(name, description="bad")
    assert len(reg) == 0


@pytest.mark.parametrize("name", ["a", "he_normal", "x2", "adam_w_2"])
def test_snake_case_names_are_accepted(name: str) -> None:
    reg: Registry = Registry("thing")
    reg.register(name, description="ok")(lambda: None)
    assert name in reg


def test_unknown_message_carries_source_and_key() -> None:
    err = ConfigError("bad value", source="study.yaml", key="optimizer")
    assert str(err) == "study.yaml: optimizer: bad value"
    outer = err.at(key="sweep")
    assert outer.key == "sweep.optimizer"
    assert str(outer) == "study.yaml: sweep.optimizer: bad value"
