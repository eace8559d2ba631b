"""`sipkit reflector` as a user runs it: tokens, and bad configs that say what to fix."""

from __future__ import annotations

import yaml


def test_token_prints_a_token_and_its_entry(run_sipkit):
    from sipkit.reflector.tokens import digest

    proc = run_sipkit("reflector", "token", "site-a")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    token = lines[1]
    entry = yaml.safe_load("\n".join(lines[3:]))
    assert token.startswith("rfl_") and entry == [{"name": "site-a", "sha256": digest(token),
                                                    "allow": []}]


def test_serve_with_a_bad_config_exits_2_naming_the_field(run_sipkit, tmp_path):
    missing = run_sipkit("reflector", "serve", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "--config: cannot read it" in missing.stderr
    path = tmp_path / "reflector.yaml"
    path.write_text(yaml.safe_dump({"public_ip": "1.2.3.4", "tls_cert": str(tmp_path / "c"),
                                    "tls_key": str(tmp_path / "k"), "tokens": str(path),
                                    "limits": {"per_token_per_minute": 0}}))
    bad = run_sipkit("reflector", "serve", "--config", str(path))
    assert bad.returncode == 2, bad.stderr
    assert "limits.per_token_per_minute" in bad.stderr and "Traceback" not in bad.stderr
    path.write_text(yaml.safe_dump({"public_ip": "1.2.3.4", "tls_cert": str(tmp_path / "c"),
                                    "tls_key": str(tmp_path / "k"), "tokens": str(path)}))
    nofile = run_sipkit("reflector", "serve", "--config", str(path))
    assert nofile.returncode == 2 and "tls_cert:" in nofile.stderr and "not a readable file" \
        in nofile.stderr


def test_help_lists_the_reflector(run_sipkit):
    proc = run_sipkit("--help")
    assert "reflector" in proc.stdout and "from the internet" in proc.stdout
