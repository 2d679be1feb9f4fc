"""Staff dashboard (/dashboard) and web chat (/chat), served by the same aiohttp app.

`setup_dashboard(app, runtime)` mounts every route, the static files and the task that
keeps published knowledge overlays live in this process. Pages are server-rendered
Jinja2 with a little plain JavaScript; charts are SVG; nothing loads from a CDN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: CLI commands load this package without needing the web stack
    from aiohttp import web

    from bot.runtime import ServiceRuntime


async def _favicon(_request: web.Request) -> web.Response:
    from aiohttp import web

    from bot.dashboard.common import STATIC_PREFIX

    raise web.HTTPMovedPermanently(f"{STATIC_PREFIX}/favicon.svg")


def setup_dashboard(app: web.Application, runtime: ServiceRuntime) -> None:
    """Mount /dashboard, /chat and /static (a process with a database: bot/web.py mounts none
    for `Runtime.build`)."""
    from bot.dashboard import auth, campaigns, freshness, handoffs, kb, stats, unanswered, webchat
    from bot.dashboard.common import DASHBOARD_KEY, STATIC, STATIC_PREFIX, Dashboard, make_env
    from bot.dashboard.overlay import OverlaySync, polling
    from bot.storage.dashboard_queries import DashboardQueries

    queries = DashboardQueries(runtime.store)
    dashboard = Dashboard(runtime, queries, make_env())
    dashboard.overlay = OverlaySync(runtime, queries)
    app[DASHBOARD_KEY] = dashboard
    app[webchat.IP_GUARD_KEY] = webchat.ip_guard(runtime.settings.flood_limit_per_minute)
    app.on_response_prepare.append(auth.security_headers)

    async def overlay_task(_app: web.Application):
        async with polling(dashboard.overlay, runtime.settings.kb_reload_seconds):
            yield

    app.cleanup_ctx.append(overlay_task)

    r = app.router
    r.add_get("/dashboard", freshness.home, name="dashboard.home")
    r.add_get("/dashboard/login", auth.login_page)
    r.add_post("/dashboard/login", auth.login_submit)
    r.add_post("/dashboard/logout", auth.logout)
    r.add_get("/dashboard/unanswered", unanswered.page, name="dashboard.unanswered")
    r.add_post("/dashboard/unanswered/action", unanswered.action)
    r.add_get("/dashboard/handoffs", handoffs.page, name="dashboard.handoffs")
    r.add_get(r"/dashboard/handoffs/{id:\d+}", handoffs.detail)
    r.add_post(r"/dashboard/handoffs/{id:\d+}/reply", handoffs.reply)
    r.add_post(r"/dashboard/handoffs/{id:\d+}/close", handoffs.close)
    r.add_post(r"/dashboard/handoffs/{id:\d+}/draft", handoffs.draft)
    r.add_get("/dashboard/kb", kb.index, name="dashboard.kb")
    r.add_get("/dashboard/kb/entry/{id}", kb.entry)
    r.add_post("/dashboard/kb/entry/{id}/override", kb.override)
    r.add_get("/dashboard/kb/review", freshness.review_page)
    r.add_post("/dashboard/kb/entry/{id}/reviewed", freshness.mark_reviewed)
    r.add_post("/dashboard/kb/entry/{id}/{op:suspend|resume}", freshness.suspend)
    r.add_get("/dashboard/kb/drafts", kb.drafts)
    r.add_route("*", "/dashboard/kb/drafts/new", kb.new)
    r.add_get(r"/dashboard/kb/drafts/{id:\d+}", kb.draft)
    r.add_post(r"/dashboard/kb/drafts/{id:\d+}", kb.save)
    r.add_post(r"/dashboard/kb/drafts/{id:\d+}/publish", kb.publish)
    r.add_post(r"/dashboard/kb/drafts/{id:\d+}/unpublish", kb.unpublish)
    r.add_get("/dashboard/stats", stats.stats_page, name="dashboard.stats")
    r.add_get("/dashboard/report", stats.report_page, name="dashboard.report")
    r.add_get("/dashboard/report.csv", stats.report_csv)
    r.add_get("/dashboard/report.xlsx", stats.report_xlsx)
    r.add_get("/dashboard/export/unanswered.csv", stats.export_unanswered)
    r.add_get("/dashboard/export/questions.csv", stats.export_questions)
    r.add_get("/dashboard/audit", stats.audit_page, name="dashboard.audit")
    r.add_get("/dashboard/campaigns", campaigns.index, name="dashboard.campaigns")
    r.add_route("*", "/dashboard/campaigns/new", campaigns.new)
    r.add_get(r"/dashboard/campaigns/{id:\d+}", campaigns.detail)
    r.add_post(r"/dashboard/campaigns/{id:\d+}/{op:confirm|approve|pause|resume|cancel}", campaigns.operate)
    r.add_get("/chat", webchat.page)
    r.add_post("/chat/api/message", webchat.message)
    r.add_post("/chat/api/updates", webchat.updates)
    r.add_static(STATIC_PREFIX, STATIC)
    r.add_get("/favicon.ico", _favicon)  # what browsers ask for when a page names no icon


__all__ = ["setup_dashboard"]
