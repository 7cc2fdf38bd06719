"""config.example.yaml stays a valid config: every key it shows is one the daemon accepts."""

from __future__ import annotations

import re
from pathlib import Path

from proxy.config import yamlfile
from proxy.config.model import validate
from proxy.config.template import new_config_text
from proxy.vault.secret import Secret

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"


def _uncommented(text: str) -> str:
    """Turn the commented-out account options (`    # key: value`) into real lines."""
    options = r"allow|read_only|allow_withdrawals|allowed_pairs|max_order_\w+|paper"
    return re.sub(rf"(?m)^(    )# ((?:{options}):.*)$", r"\1\2", text)


def test_example_config_validates_with_every_option_switched_on() -> None:
    """The example, with a real encryption header and its account options uncommented, validates."""
    real = yamlfile.parse_yaml(new_config_text("main", "K-" + "0" * 40, Secret("S-" + "1" * 40),
                                               Secret("example passphrase")), "generated")
    doc = yamlfile.parse_yaml(_uncommented(EXAMPLE.read_text()), "config.example.yaml")
    doc["accounts"]["main"]["secret"] = real["accounts"]["main"]["secret"]
    doc["encryption"] = real["encryption"]
    document = validate(doc, EXAMPLE)
    rules = document.accounts[0].policy
    assert rules.allow is not None and rules.allowed_pairs is not None and rules.max_order_notional
    assert document.limits.rate_per_second == 10 and document.socket_mode == 0o660
