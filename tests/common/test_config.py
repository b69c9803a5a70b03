"""services.common.config: every problem of the environment reported at once, in French."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError, Env, Settings, load_settings


def _problem_about(problems: list[str], name: str) -> str:
    matching = [p for p in problems if p.startswith(name)]
    assert matching, f"{name} absent de {problems}"
    return matching[0]


def test_production_without_required_variables_lists_every_missing_one_at_once():
    with pytest.raises(ConfigError) as info:
        load_settings("accounts", {})  # PORTAIL_ENV defaults to production

    problems = info.value.problems
    assert len(problems) == 3
    for name in ("ACCOUNTS_DATABASE_URL", "AMQP_URL", "PORTAIL_SECRET_KEY"):
        assert _problem_about(problems, name) == f"{name} est obligatoire"
    message = str(info.value)
    assert message.startswith("Configuration invalide :")
    assert all(p in message for p in problems)


def test_production_names_the_database_variable_of_the_service_itself():
    with pytest.raises(ConfigError) as info:
        load_settings("billing", {"PORTAIL_ENV": "production", "AMQP_URL": "amqp://x//",
                                  "PORTAIL_SECRET_KEY": "s" * 32})
    assert info.value.problems == ["BILLING_DATABASE_URL est obligatoire"]


def test_production_only_asks_for_what_the_process_needs():
    with pytest.raises(ConfigError) as info:
        load_settings("gateway", {"PORTAIL_ENV": "production"}, needs_bus=False)
    assert sorted(info.value.problems) == ["GATEWAY_DATABASE_URL est obligatoire",
                                           "PORTAIL_SECRET_KEY est obligatoire"]


def test_production_with_everything_set_uses_it():
    settings = load_settings("accounts", {
        "PORTAIL_ENV": "production",
        "ACCOUNTS_DATABASE_URL": "postgresql://db/accounts",
        "AMQP_URL": "amqp://rabbit//",
        "PORTAIL_SECRET_KEY": "k" * 40,
        "PUBLIC_URL": "https://portail.example/",
        "LOG_LEVEL": "debug",
    })
    assert settings.database_url == "postgresql://db/accounts"
    assert settings.amqp_url == "amqp://rabbit//"
    assert settings.secret_key == "k" * 40
    assert settings.public_url == "https://portail.example"
    assert settings.log_level == "DEBUG"
    assert settings.dev is False


def test_dev_falls_back_to_sqlite_under_the_data_dir_and_the_memory_bus(tmp_path):
    settings = load_settings("billing", {"PORTAIL_ENV": "dev", "PORTAIL_DATA_DIR": str(tmp_path)})

    assert settings.dev is True
    assert settings.data_dir == Path(tmp_path)
    assert settings.database_url == f"sqlite:///{(tmp_path / 'billing.sqlite3').resolve()}"
    assert settings.amqp_url == "memory://"
    assert settings.secret_key  # a dev-only secret, never empty


def test_dev_still_takes_the_urls_it_is_given(tmp_path):
    settings = load_settings("billing", {
        "PORTAIL_ENV": "dev", "PORTAIL_DATA_DIR": str(tmp_path),
        "BILLING_DATABASE_URL": "postgresql://db/billing", "AMQP_URL": "amqp://rabbit//",
    })
    assert settings.database_url == "postgresql://db/billing"
    assert settings.amqp_url == "amqp://rabbit//"


def test_a_mode_with_the_dev_fallbacks_is_a_dev_mode(tmp_path):
    # "test" gets the embedded defaults (and the well-known dev secret): it must not then
    # behave as production elsewhere (secure cookies, production keys required).
    settings = load_settings("accounts", {"PORTAIL_ENV": "test",
                                          "PORTAIL_DATA_DIR": str(tmp_path)})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.dev is True
    assert Settings(service="x", env="production").dev is False


def test_an_unknown_mode_is_reported_with_the_rest():
    with pytest.raises(ConfigError) as info:
        load_settings("accounts", {"PORTAIL_ENV": "prod"})
    assert ("PORTAIL_ENV doit valoir dev, test ou production (reçu 'prod')"
            in info.value.problems)


def test_bad_ints_floats_and_bools_are_all_reported_at_once():
    env = Env({"WORKERS": "douze", "TIMEOUT": "dix secondes", "DEBUG": "peut-être",
               "GOOD_INT": "12", "GOOD_FLOAT": "0.5", "YES": "oui", "NO": "0"})

    assert env.int("WORKERS", 4) == 4
    assert env.float("TIMEOUT", 10.0) == 10.0
    assert env.bool("DEBUG", False) is False
    assert env.int("GOOD_INT", 4) == 12
    assert env.float("GOOD_FLOAT", 10.0) == 0.5
    assert env.bool("YES") is True
    assert env.bool("NO", True) is False
    assert env.int("ABSENT", 7) == 7

    with pytest.raises(ConfigError) as info:
        env.check()
    assert info.value.problems == [
        "WORKERS doit être un nombre entier (reçu 'douze')",
        "TIMEOUT doit être un nombre (reçu 'dix secondes')",
        "DEBUG doit valoir 1 ou 0 (reçu 'peut-être')",
    ]


def test_a_clean_environment_passes_the_check():
    env = Env({"WORKERS": "3"})
    assert env.int("WORKERS", 1) == 3
    env.check()  # nothing raised
