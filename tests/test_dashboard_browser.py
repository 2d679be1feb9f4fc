"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright; never downloaded).

A citizen's question fails in /chat; staff log in, review the cluster, draft and publish
an entry; the same question in /chat then gets the new answer. The statistics page is
screenshotted and its charts checked for drawn pixels.
"""

from __future__ import annotations

import base64
import shutil

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
                shot = await staff.screenshot(full_page=True, path=str(tmp_path / "stats.png"))
                assert len(shot) > 10_000
                per_day = await charts.first.screenshot()
                blue, width, height = await count_colour(staff, per_day, (0x1F, 0x5F, 0xA8))
                assert width > 300 and height > 80 and blue > 40  # the bar of today's questions is drawn
                rates = await charts.nth(1).screenshot()
                green, *_ = await count_colour(staff, rates, (0x1B, 0x7F, 0x3B))
                assert green > 20  # the answer-rate line
                assert errors == []  # no CSP violations or script errors
            finally:
                await browser.close()
