"""Third-party platforms and consumers through entry points; a broken one is a warning."""

from __future__ import annotations

import textwrap

import pytest

PLUGIN = '''
from capit.consumers import Consumer, Delivery
from capit.platforms import Platform


class Shout(Consumer):
    name = "shout"
    title = "shout"
    description = "prints the key in capitals (a test plugin)"

    def install(self, key, platform, *, assume_yes=False):
        return Delivery(self.name, f"{key.short_cap()} key shouted", output="KEY READY")


class Nowhere(Platform):
    name = "nowhere"
    title = "Nowhere"
    cap_help = "a test platform"
    default_base_url = "https://nowhere.invalid/v1"


shout = Shout()
nowhere = Nowhere()
'''


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "capit_testplug.py").write_text(PLUGIN)
    (site / "capit_broken.py").write_text("raise ImportError('this plugin is broken')\n")
    dist = site / "capit_testplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: capit-testplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [capit.consumers.v1]
        shout = capit_testplug:shout
        broken = capit_broken:thing

        [capit.platforms.v1]
        nowhere = capit_testplug:nowhere
        alsobroken = capit_broken:thing
    """))
    monkeypatch.syspath_prepend(str(site))
    return site


def test_entry_point_consumer_and_platform_are_listed(run, plugin_dist):
    consumers = run("--consumers")
    assert consumers.code == 0, consumers
    assert "shout" in consumers.stdout and "example" in consumers.stdout
    assert "broken" in consumers.stderr and "failed to load" in consumers.stderr
    platforms = run("--platforms")
    assert platforms.code == 0, platforms
    assert "nowhere" in platforms.stdout and "openrouter" in platforms.stdout
    assert "alsobroken" in platforms.stderr


def test_entry_point_consumer_receives_a_minted_key(run, stored_key, plugin_dist):
    from conftest import PASS

    result = run("openrouter", "2", "--agent", "shout", input=f"{PASS}\n")
    assert result.code == 0, result
    assert result.stdout.strip() == "KEY READY"
    assert "$2.00 key shouted" in result.stderr
    assert [r.path for r in stored_key.requests] == ["/api/v1/keys"]


def test_broken_agent_plugin_is_refused_before_minting(run, stored_key, plugin_dist):
    result = run("openrouter", "2", "--agent", "broken", input="x\n")
    assert result.code == 2, result
    assert "failed to load" in result.stderr
    assert stored_key.requests == []
