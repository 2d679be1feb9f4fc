"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright; never downloaded).

A citizen's question fails in /chat; staff log in, review the cluster, draft and publish
an entry; the same question in /chat then gets the new answer. The statistics page is
screenshotted and its charts checked for drawn pixels.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from tests.dashboard_harness import PASSWORD, running_site

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless browser tests need Debian's 'chromium' on the PATH (.ci/run installs it)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "đăng ký câu lạc bộ dưỡng sinh của phường ở đâu"

COUNT_COLOUR = """async ([png, rgb]) => {
  const img = new Image();
  img.src = "data:image/png;base64," + png;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - rgb[0]) < 12 && Math.abs(data[i + 1] - rgb[1]) < 12 && Math.abs(data[i + 2] - rgb[2]) < 12) n++;
  }
  return [n, img.width, img.height];
}"""


async def count_colour(page, png: bytes, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Pixels of about this colour in a screenshot, counted by the browser itself (no image library)."""
    return tuple(await page.evaluate(COUNT_COLOUR, [base64.b64encode(png).decode(), list(rgb)]))


@pytest.mark.slow(7)
async def test_review_draft_publish_then_ask_in_web_chat(tmp_path):
    playwright_api = pytest.importorskip("playwright.async_api")
    async with running_site(f"sqlite+aiosqlite:///{tmp_path}/e2e.sqlite3") as site:
        await site.account("admin", "admin")
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                citizen = await (await browser.new_context(viewport={"width": 400, "height": 800})).new_page()
                citizen.set_default_timeout(15_000)
                await citizen.goto(site.url + "/chat?ward=phuong-a")
                assert await citizen.locator("h1").inner_text() == "Trợ lý dịch vụ công số"
                await citizen.click("button.choice[data-action='cat:vneid']")  # the category menu works
                await citizen.wait_for_selector("li.msg.bot button[data-action='faq:vneid.forgot_password']")
                await citizen.fill("#q", "mật khẩu")  # too vague: the bot offers choices
                await citizen.press("#q", "Enter")
                offer = citizen.locator("li.msg.bot", has_text="Có phải bạn muốn hỏi")
                await offer.wait_for()
                choice = offer.locator("button.choice[data-action^='pick:']").first
                label = await choice.inner_text()
                await choice.click()
                await citizen.wait_for_selector(f"li.msg.user:has-text('{label}')")
                answer = citizen.locator("li.msg.bot").last
                await answer.locator("button[aria-label='Hữu ích']").wait_for()  # an answer, with feedback
                assert (await answer.inner_text()).startswith(label)  # the chosen entry's answer
                await citizen.fill("#q", QUESTION)
                await citizen.press("#q", "Enter")
                await citizen.wait_for_selector("li.msg.bot:has-text('chưa có câu trả lời')")

                staff = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
                staff.set_default_timeout(15_000)
                errors: list[str] = []
                staff.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await staff.goto(site.url + "/dashboard/unanswered")
                assert "/dashboard/login" in staff.url
                await staff.fill("input[name=username]", "admin")
                await staff.fill("input[name=password]", PASSWORD)
                await staff.click("button[type=submit]")
                cluster = staff.locator("article.cluster", has_text="dưỡng sinh")
                await cluster.wait_for()
                assert "Phường A" in await cluster.inner_text()
                await cluster.locator("button[value=draft]").click()
                await staff.wait_for_selector("text=Đã tạo bản nháp từ nhóm câu hỏi")
                assert QUESTION in await staff.locator("textarea[name=questions]").input_value()
                await staff.fill("input[name=title]", "Câu lạc bộ dưỡng sinh của phường")
                await staff.select_option("select[name=category]", "bdhvs")
                await staff.fill("textarea[name=answer]",
                                 "Bạn đăng ký tại nhà văn hóa phường, sáng thứ Hai đến thứ Sáu, mang theo căn cước.")
                await staff.fill("input[name=entry_source]", "Thông báo của UBND phường")  # a source is required
                await staff.click("button[name=op][value=save]")
                await staff.wait_for_selector("text=Đã lưu.")
                await staff.click("text=Duyệt và xuất bản")
                await staff.wait_for_selector("text=Đã xuất bản. Trợ lý dùng ngay nội dung mới.")

                await citizen.fill("#q", QUESTION)
                await citizen.click("#send")
                answer = citizen.locator("li.msg.bot", has_text="nhà văn hóa phường")
                await answer.wait_for()
                await answer.locator("button[aria-label='Hữu ích']").click()
                await citizen.wait_for_selector("li.msg.bot:has-text('Cảm ơn bạn')")

                await staff.goto(site.url + "/dashboard/stats")
                charts = staff.locator("svg.chart")
                assert await charts.count() >= 5
                await staff.screenshot(full_page=True, path=str(tmp_path / "stats.png"))
                for i in range(await charts.count()):  # laid out at full width, none collapsed
                    box = await charts.nth(i).bounding_box()
                    assert box and box["width"] > 600 and box["height"] > 40, i
                per_day = await charts.first.screenshot()
                blue, width, height = await count_colour(staff, per_day, (0x1F, 0x5F, 0xA8))
                assert width > 300 and height > 80 and blue > 40  # the bar of today's questions is drawn
                rates = await charts.nth(1).screenshot()
                green, *_ = await count_colour(staff, rates, (0x1B, 0x7F, 0x3B))
                assert green > 20  # the answer-rate line
                assert errors == []  # no CSP violations or script errors
            finally:
                await browser.close()


async def test_lists_refresh_by_themselves(tmp_path):
    """A question asked while the unanswered list is open appears on it, and a campaign's progress
    moves on, without reloading (the page's timer is fast-forwarded; the fetches are real)."""
    playwright_api = pytest.importorskip("playwright.async_api")
    async with running_site(f"sqlite+aiosqlite:///{tmp_path}/refresh.sqlite3", campaign_approval_threshold=10) as site:
        await site.account("admin", "admin")
        await site.seed_question("con mèo nhà tôi bỏ ăn mấy hôm nay", ward="phuong-a")
        user = await site.runtime.store.users.touch("web", "f" * 32)
        await site.runtime.store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await (await browser.new_context()).new_page()
                page.set_default_timeout(15_000)
                await page.clock.install()
                await page.goto(site.url + "/dashboard/login")
                await page.fill("input[name=username]", "admin")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.locator("article.cluster", has_text="con mèo").wait_for()
                assert await page.locator("article.cluster").count() == 1
                await site.seed_question("xin giấy phép nuôi chim cảnh", ward="phuong-b")
                await page.clock.run_for(5_000)
                assert await page.locator("article.cluster").count() == 1  # not before its 20 seconds
                await page.clock.run_for(16_000)
                await page.locator("article.cluster", has_text="chim cảnh").wait_for()
                assert "2 nhóm, 2 câu hỏi" in await page.locator("p.count").inner_text()

                await page.goto(site.url + "/dashboard/campaigns/new")
                await page.fill("input[name=title]", "Họp tổ dân phố")
                await page.fill("textarea[name=text]", "Tối thứ Sáu tại nhà văn hóa.")
                await page.click("text=Lưu và xem trước")
                await page.click("button:has-text('Xác nhận gửi')")
                await page.wait_for_selector("text=Đã xác nhận")
                progress = page.locator("#progress")
                assert "Đã lên lịch" in await progress.inner_text()
                assert await site.runtime.campaign_runner.run_once()
                await page.clock.run_for(6_000)
                await progress.locator("text=Báo cáo kết quả").wait_for()
                assert "Đã gửi xong" in await progress.inner_text()
            finally:
                await browser.close()


# The staff guide (docs/huong-dan-can-bo.md) shows these; `UPDATE_DOCS_SCREENSHOTS=1` writes them to
# docs/img (commit them), otherwise they go to a scratch folder so a test run leaves the checkout clean.
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
SCREENSHOTS = ("dang-nhap", "chua-tra-loi", "soan-muc-moi", "kho-kien-thuc", "hoi-can-bo", "chien-dich", "bao-cao",
               "thong-ke")
ANSWERED = ["quên mật khẩu vneid", "cách nộp hồ sơ trực tuyến trên cổng dịch vụ công",
            "tài khoản định danh mức 2 là gì", "chuyển tiền nhầm thì phải làm sao"]


async def seed_history(site) -> None:
    """Ten days of questions, so the lists and charts look like a ward's, not an empty install."""
    matcher = site.runtime.knowledge.matcher
    for day in range(10):
        for n, text in enumerate(ANSWERED[: 1 + (day * 7) % 4]):
            result = matcher.match(text)
            await site.seed_question(text, ward="phuong-a" if n % 2 else "phuong-b", decision=result.decision.value,
                                     faq_id=result.faq_id, days_ago=day + 0.1, channel="web" if n % 3 else "telegram")
    for text, ward, days in [("quen pass vneid phai lam sao", "phuong-a", 2), ("quên pass vneid phải làm sao", "phuong-b", 1),
                             ("đăng ký câu lạc bộ dưỡng sinh của phường ở đâu", "phuong-a", 3),
                             ("dang ky clb duong sinh cua phuong o dau", "phuong-a", 0.5),
                             ("xin giấy phép nuôi chim cảnh ở đâu", "phuong-b", 4)]:
        await site.seed_question(text, ward=ward, days_ago=days)


@pytest.mark.slow(7)
async def test_staff_guide_walkthrough_with_screenshots(tmp_path):
    """Log in, Chưa trả lời (link a cluster, draft a new entry, publish it), Kho kiến thức, Hỏi
    cán bộ (answer a web hand-off), Chiến dịch (create, preview), Báo cáo, Thống kê; the web chat
    header stays small on a phone."""
    playwright_api = pytest.importorskip("playwright.async_api")
    out = DOCS_IMG if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    async with running_site(f"sqlite+aiosqlite:///{tmp_path}/guide.sqlite3") as site:
        await site.account("lan", "admin")
        await seed_history(site)
        user = await site.runtime.store.users.touch("web", "e" * 32)
        await site.runtime.store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                phone = await (await browser.new_context(viewport={"width": 390, "height": 740})).new_page()
                phone.set_default_timeout(15_000)
                await phone.clock.install()  # the chat polls for the team's replies every 15 s: run it on
                await phone.goto(site.url + "/chat?ward=phuong-b")
                header = await phone.locator("header.chat-head").bounding_box()
                assert header is not None and header["height"] < 70, header  # it was 100 px: two wrapped lines
                for n, text in enumerate(("con mèo nhà tôi bỏ ăn mấy hôm nay", "cách trồng hoa hồng trong chậu")):
                    await phone.fill("#q", text)
                    await phone.press("#q", "Enter")
                    await phone.locator("li.msg.bot:has-text('chưa có câu trả lời')").nth(n).wait_for()
                await phone.locator("button.choice[data-action='human']").last.click()
                await phone.wait_for_selector("li.msg.bot:has-text('mã #')")  # sent to the staff

                staff = await (await browser.new_context(viewport={"width": 1000, "height": 700})).new_page()
                staff.set_default_timeout(15_000)
                errors: list[str] = []
                staff.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                shot = {name: out / f"{name}.png" for name in SCREENSHOTS}

                await staff.goto(site.url + "/dashboard/login")
                await staff.fill("input[name=username]", "lan")
                await staff.fill("input[name=password]", PASSWORD)
                await staff.screenshot(path=shot["dang-nhap"])
                await staff.click("button[type=submit]")

                pass_cluster = staff.locator("article.cluster", has_text="pass vneid")
                await pass_cluster.wait_for()
                # One cluster for both spellings, named by the one with diacritics.
                assert await staff.locator("article.cluster h2", has_text="câu lạc bộ dưỡng sinh").count() == 1
                assert await staff.locator("article.cluster", has_text="duong sinh").count() == 1
                await staff.screenshot(path=shot["chua-tra-loi"])
                for guess in await staff.locator("article.cluster dd:has(span.score)").all():
                    box = await guess.bounding_box()  # "Trợ lý đoán": title and score on one line
                    assert box is not None and box["height"] < 40, box
                entry = pass_cluster.locator("input[name=entry_id]")
                assert await entry.input_value() == "vneid.forgot_password"  # the bot's confident guess
                await pass_cluster.locator("button:has-text('Gắn')").click()
                await staff.wait_for_selector("text=Đã gắn câu hỏi vào mục có sẵn.")
                assert await staff.locator("article.cluster", has_text="pass vneid").count() == 0

                await staff.locator("article.cluster", has_text="dưỡng sinh").locator("button[value=draft]").click()
                await staff.wait_for_selector("text=Đã tạo bản nháp từ nhóm câu hỏi")
                await staff.fill("input[name=title]", "Câu lạc bộ dưỡng sinh của phường")
                await staff.select_option("select[name=category]", "bdhvs")
                await staff.fill("textarea[name=answer]", "Bạn đăng ký tại nhà văn hóa phường, sáng thứ Hai đến "
                                                          "thứ Sáu, mang theo căn cước.")
                await staff.fill("input[name=entry_source]", "Thông báo số 12/TB-UBND của UBND phường")  # required
                await staff.click("button[name=op][value=save]")
                await staff.wait_for_selector("text=Đã lưu.")
                await staff.screenshot(path=shot["soan-muc-moi"])
                await staff.click("text=Duyệt và xuất bản")
                await staff.wait_for_selector("text=Đã xuất bản. Trợ lý dùng ngay nội dung mới.")

                await staff.click("nav >> text=Kho kiến thức")
                await staff.wait_for_url("**/dashboard/kb**")
                await staff.screenshot(path=shot["kho-kien-thuc"])

                await staff.click("nav >> text=Hỏi cán bộ")
                await staff.locator("a", has_text="hoa hồng").first.click()
                await staff.fill("textarea[name=text]", "Chào bạn, bạn tưới nước vừa đủ, để chậu nơi có nắng buổi "
                                                        "sáng. Cần gì thêm bạn cứ nhắn nhé.")
                await staff.screenshot(path=shot["hoi-can-bo"])
                await staff.click("button:has-text('Gửi trả lời')")
                await staff.wait_for_selector("text=Đã gửi câu trả lời cho người dân.")
                await phone.clock.run_for(16_000)  # the chat's next poll, without waiting for it
                await phone.wait_for_selector("li.msg:has-text('tưới nước vừa đủ')")  # the citizen sees it

                await staff.goto(site.url + "/dashboard/campaigns/new")
                await staff.fill("input[name=title]", "Họp tổ dân phố tháng này")
                await staff.fill("textarea[name=text]", "Mời bà con dự họp tổ dân phố lúc 19 giờ tối thứ Sáu tại "
                                                        "nhà văn hóa phường.")
                await staff.click("text=Lưu và xem trước")
                await staff.wait_for_selector("h1:has-text('Họp tổ dân phố tháng này')")
                await staff.screenshot(path=shot["chien-dich"])

                await staff.click("nav >> text=Báo cáo")
                await staff.wait_for_selector("h1:has-text('Báo cáo định kỳ')")
                await staff.screenshot(path=shot["bao-cao"])
                await staff.click("nav >> text=Thống kê")
                await staff.locator("svg.chart").first.wait_for()
                await staff.screenshot(path=shot["thong-ke"])
                assert errors == []  # no missing favicon, CSP violation or script error on the way
            finally:
                await browser.close()
    for name, path in shot.items():
        assert path.stat().st_size > 5_000, name  # a real page was drawn
