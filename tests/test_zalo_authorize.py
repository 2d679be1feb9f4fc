"""`python -m bot zalo authorize` end to end: the real CLI in a subprocess against the fake Zalo
OAuth host (PKCE checked there), the pair stored where the running service reads it."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.ops.zalo_authorize import AuthorizeError, challenge_for, code_from
from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.models import ChannelToken
from tests.fakes.zalo_oa import FakeZaloOA
from tests.helpers import cli_in_process, free_port
from tests.zalo_harness import USER, oa_say, oa_settings, running

ROOT = Path(__file__).resolve().parent.parent
CALLBACK = "https://phuong-a.example.gov.vn/zalo-callback"


@pytest.fixture
async def oa():
    async with FakeZaloOA() as fake:
        fake.callback_url = CALLBACK
        fake.add_user(USER)
        yield fake


def cli_env(fake: FakeZaloOA, database_url: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "empty.env").touch()  # no settings file of the machine running the tests
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZALO_", "TELEGRAM_", "DATABASE_URL"))}
    env.update(DATABASE_URL=database_url, ZALO_OA_APP_ID=fake.app_id, ZALO_OA_SECRET_KEY=fake.oa_secret_key,
               ZALO_OA_APP_SECRET=fake.app_secret, ZALO_OA_OAUTH_BASE_URL=fake.oauth_base_url,
               ZALO_OA_API_BASE_URL=fake.api_base_url, USER_KEY_SECRET="test-secret", ENV_FILE=str(tmp_path / "empty.env"),
               PYTHONPATH=str(ROOT))
    return env


async def start_cli(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "zalo", "authorize", *args, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def read_until(proc: asyncio.subprocess.Process, pattern: str, seen: list[str]) -> re.Match:
    """Read stdout lines until one matches; all lines read are kept in `seen`."""
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"CLI ended before {pattern!r}: {''.join(seen)}"
                                     f"{(await proc.stderr.read()).decode()}")
            seen.append(line)
            if found := re.search(pattern, line):
                return found


async def allow(permission_url: str) -> str:
    """The OA admin allows the app: the address Zalo sends the browser to."""
    async with aiohttp.ClientSession() as http, http.get(permission_url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        return response.headers["Location"]


async def stored_pair(database_url: str, app_id: str) -> ChannelToken | None:
    engine, store = await open_store(load_settings(_env_file=None, database_url=database_url,
                                                   user_key_secret="test-secret"))
    try:
        async with store.sessions() as s:
            return (await s.scalars(select(ChannelToken).where(ChannelToken.name == f"zalo_oa:{app_id}"))).first()
    finally:
        await engine.dispose()


async def test_pasted_callback_address_stores_the_first_pair_and_the_running_service_uses_it(
        oa, database_url, tmp_path):
    settings = oa_settings(oa, database_url, zalo_oa_access_token="", zalo_oa_refresh_token="")
    async with running(settings) as service:  # configured, not authorised yet
        assert "zalo authorize" in service.runtime.channel_states["zalo"]
        proc = await start_cli(cli_env(oa, database_url, tmp_path), "--redirect-uri", CALLBACK)
        seen: list[str] = []
        url = (await read_until(proc, r"(http://\S+/v4/oa/permission\?\S+)", seen)).group(1)
        assert "code_challenge=" in url and "state=" in url and f"app_id={oa.app_id}" in url
        assert "redirect_uri=https%3A%2F%2Fphuong-a.example.gov.vn%2Fzalo-callback" in url
        address = await allow(url)
        assert address.startswith(CALLBACK + "?") and "code=" in address
        out, err = await proc.communicate((address + "\n").encode())
        assert proc.returncode == 0, err.decode()
        assert oa.oa_name in out.decode()  # the OA it connected to
        [grant] = oa.authorizations
        row = await stored_pair(database_url, oa.app_id)
        assert (row.access_token, row.refresh_token) == (grant.access_token, grant.refresh_token)
        assert [r.body["grant_type"] for r in oa.requests if r.host == "oauth"] == ["authorization_code"]

        # The running service answers with the stored pair, and refreshes it when it expires.
        assert await oa_say(oa, service, USER, "quên mật khẩu vneid")
        oa.expire_token()
        assert await oa_say(oa, service, USER, "cảm ơn")
    assert oa.refreshes and oa.refreshes[0].old_refresh_token == grant.refresh_token


async def test_code_on_a_local_callback_port(oa, database_url, tmp_path):
    port = free_port()  # for the one-off callback server
    oa.callback_url = f"http://localhost:{port}/zalo/callback"
    proc = await start_cli(cli_env(oa, database_url, tmp_path), "--listen", str(port), "--timeout", "60")
    seen: list[str] = []
    url = (await read_until(proc, r"(http://\S+/v4/oa/permission\?\S+)", seen)).group(1)
    await read_until(proc, rf"cổng {port}", seen)  # listening now
    address = await allow(url)
    async with aiohttp.ClientSession() as http:
        async with http.get(address.replace("localhost", "127.0.0.1") + "x") as wrong:  # state tampered
            assert wrong.status == 400
        async with http.get(address.replace("localhost", "127.0.0.1")) as page:
            assert page.status == 200 and "Đã nhận mã" in await page.text()
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    row = await stored_pair(database_url, oa.app_id)
    assert row is not None and row.access_token == oa.access_token


async def test_address_from_another_attempt_is_refused_and_nothing_stored(oa, database_url, tmp_path):
    first = await start_cli(cli_env(oa, database_url, tmp_path), "--redirect-uri", CALLBACK)
    url = (await read_until(first, r"(http://\S+/v4/oa/permission\?\S+)", [])).group(1)
    stale = await allow(url)
    first.kill()
    await first.wait()
    second = await start_cli(cli_env(oa, database_url, tmp_path), "--redirect-uri", CALLBACK)
    await read_until(second, r"/v4/oa/permission\?", [])
    _, err = await second.communicate((stale + "\n").encode())
    assert second.returncode == 1 and "state" in err.decode()
    assert not oa.authorizations and await stored_pair(database_url, oa.app_id) is None


async def test_without_a_callback_url_or_app_settings_the_command_says_what_is_missing(oa, tmp_path):
    # In-process (the same command code; the tests above run it as a process): it stops at once.
    env = cli_env(oa, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3", tmp_path)
    proc = await asyncio.to_thread(cli_in_process, "zalo", "authorize", env=env)
    assert proc.returncode == 2 and "--redirect-uri" in proc.stderr
    proc = await asyncio.to_thread(cli_in_process, "zalo", "authorize", "--redirect-uri", CALLBACK,
                                   env={**env, "ZALO_OA_APP_ID": ""})
    assert proc.returncode == 2 and "ZALO_OA_APP_ID" in proc.stderr


async def test_fake_checks_the_verifier_and_spends_a_code_once(oa):
    verifier = "v" * 50
    query = f"app_id={oa.app_id}&redirect_uri={CALLBACK}&code_challenge={challenge_for(verifier)}&state=s"
    code = code_from(await allow(f"{oa.oauth_base_url}/v4/oa/permission?{query}"), "s")

    async def exchange(code: str, verifier: str) -> dict:
        form = {"code": code, "app_id": oa.app_id, "grant_type": "authorization_code", "code_verifier": verifier}
        async with aiohttp.ClientSession() as http, \
                http.post(oa.token_url, data=form, headers={"secret_key": oa.app_secret}) as response:
            return await response.json()

    assert "code_verifier" in (await exchange(code, "w" * 50))["error_description"]
    assert "access_token" not in await exchange(code, verifier)  # refused once: spent
    code = code_from(await allow(f"{oa.oauth_base_url}/v4/oa/permission?{query}"), "s")
    assert (await exchange(code, verifier))["access_token"] == oa.access_token
    async with aiohttp.ClientSession() as http, \
            http.get(f"{oa.oauth_base_url}/v4/oa/permission?{query.replace(CALLBACK, 'https://evil.example')}",
                     allow_redirects=False) as response:
        assert response.status == 400


def test_pasted_text_is_read_as_an_address_a_query_or_a_bare_code():
    assert code_from("https://x.example/cb?oa_id=1&code=abc&state=s1", "s1") == "abc"
    assert code_from("  code=abc&state=s1 ", "s1") == "abc"
    assert code_from("abc-DEF_123", "s1") == "abc-DEF_123"
    for bad in ("", "https://x.example/cb?state=s1", "two words", "https://x.example/cb?code=a&state=zz"):
        with pytest.raises(AuthorizeError):
            code_from(bad, "s1")
    assert challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
