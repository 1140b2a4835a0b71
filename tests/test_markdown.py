"""Markdown → Slack mrkdwn and Block Kit, on the demo runbooks and Backstage's documentation templates."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from bot.knowledge.markdown import BLOCK_LIMIT, Section, render, split_sections, to_mrkdwn

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = ROOT / "examples" / "runbooks"
TEMPLATES = Path(__file__).resolve().parent / "data" / "documentation-templates"
SOURCE = "https://github.com/acme/runbooks/blob/main/payment-service.md"
ALL_FILES = sorted(RUNBOOKS.glob("*.md")) + sorted(TEMPLATES.glob("*.md"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def fences_balanced(text: str) -> bool:
    return sum(line == "```" for line in text.split("\n")) % 2 == 0


def section_texts(blocks: list[dict]) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]


def context_texts(blocks: list[dict]) -> list[str]:
    return [element["text"] for block in blocks if block["type"] == "context" for element in block["elements"]]


def test_runbook_headings_titles_levels_and_anchors() -> None:
    sections = split_sections(read(RUNBOOKS / "auth-service.md"))
    assert [(s.level, s.title, s.anchor) for s in sections] == [
        (1, "Auth Service runbook", "auth-service-runbook"),
        (2, "Symptoms", "symptoms"),
        (2, "Dashboards", "dashboards"),
        (2, "Common issues", "common-issues"),
        (3, "Login failure spike (credential stuffing)", "login-failure-spike-credential-stuffing"),
        (3, "Signature errors after a key rotation", "signature-errors-after-a-key-rotation"),
        (3, "Redis unavailable", "redis-unavailable"),
        (2, "Escalation", "escalation"),
    ]
    assert sections[3].body == ""
    assert sections[2].body.startswith("- [Auth overview](https://grafana.acme.example/")
    assert "## " not in "".join(s.body for s in sections)


def test_backstage_templates_headings() -> None:
    runbook = split_sections(read(TEMPLATES / "runbook-template.md"))
    # The leading HTML comment renders to nothing, so there is no "Overview" section.
    assert [s.title for s in runbook] == [
        "Runbook Title", "Summary", "Facts", "Alert types", "Troubleshooting", "Failover/recovery", "Logging", "FAQ",
    ]
    assert runbook[5].anchor == "failoverrecovery"
    assert runbook[7].anchor == "faq"
    architecture = split_sections(read(TEMPLATES / "system-architecture-template.md"))
    assert architecture[0] == Section("System Architecture for <System>", 1, "system-architecture-for-system", "")
    assert [(s.level, s.anchor) for s in architecture[3:6]] == [
        (2, "architecture"), (3, "components"), (3, "edge-description"),
    ]
    assert architecture[1].body.count("```") == 2  # the plantuml block stays inside "Overview"


def test_hash_lines_inside_fenced_code_do_not_split() -> None:
    runbook = read(TEMPLATES / "runbook-template.md").replace(
        "## Logging\n",
        "## Logging\n\n```sh\n# tail the logs\nkubectl logs deploy/foo\n## not a heading either\n```\n",
    )
    sections = split_sections(runbook)
    assert [s.title for s in sections] == [s.title for s in split_sections(read(TEMPLATES / "runbook-template.md"))]
    logging = next(s for s in sections if s.anchor == "logging")
    assert "# tail the logs\nkubectl logs deploy/foo\n## not a heading either" in logging.body
    assert "```\n# tail the logs\nkubectl logs deploy/foo\n## not a heading either\n```" in to_mrkdwn(logging.body)


def test_front_matter_setext_preamble_and_duplicate_anchors() -> None:
    markdown = (
        "---\ntitle: Payments FAQ\ntags: [payments]\n---\n"
        "Read this first.\n\nRefunds\n=======\n\nText.\n\n## Refunds\n"
    )
    sections = split_sections(markdown)
    assert sections == [
        Section("Payments FAQ", 1, "", "Read this first."),
        Section("Refunds", 1, "refunds", "Text."),
        Section("Refunds", 2, "refunds-1", ""),
    ]
    assert split_sections("Intro\n\n# Title\n")[0] == Section("Overview", 1, "", "Intro")
    assert "title:" not in to_mrkdwn(markdown)
    # `---` thematic breaks around plain text are not front matter.
    assert to_mrkdwn("---\nNot front matter\n\n---\n").startswith("──────────\n\nNot front matter")


def test_code_blocks_are_kept_intact() -> None:
    markdown = read(RUNBOOKS / "payment-service.md")
    mrkdwn = to_mrkdwn(markdown)
    fences = [t.content for t in MarkdownIt("commonmark").parse(markdown) if t.type == "fence"]
    assert len(fences) == 7
    for content in fences:
        escaped = content.rstrip("\n").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f"\n```\n{escaped}\n```" in mrkdwn
    assert "```sh" not in mrkdwn  # Slack would show the language as the first line of code
    # Code inside a list item is flush left; the paragraph after it stays indented under the item.
    assert "4. To send all traffic to the healthy PSP:\n\n```\nkubectl -n payments set env" in mrkdwn
    assert "\n\n   Remove the override (`PSP_ROUTING_OVERRIDE-`) once" in mrkdwn


def test_fence_with_info_string_is_closed() -> None:
    mrkdwn = to_mrkdwn(read(TEMPLATES / "system-architecture-template.md"))
    assert "```\n@startuml Architecture Overview\n" in mrkdwn
    assert "@enduml\n```\n\n*Business impact*\n\nStatement describing the business impact." in mrkdwn
    assert "## " not in mrkdwn
    assert "• *Overview:* Required. What is the purpose of the connection?" in mrkdwn


def test_inline_formatting_links_and_lists() -> None:
    payment = to_mrkdwn(read(RUNBOOKS / "payment-service.md"))
    assert payment.startswith("*Payment Service runbook*\n\n`payment-service` authorises, captures and refunds")
    assert "our payment service providers (PSPs) through" in payment  # soft line breaks join
    assert "so when payment-service is down *nobody can place an order*." in payment
    assert (
        "• <https://grafana.acme.example/d/payment-service/payment-service-overview|Payment Service overview>:"
        in payment
    )
    assert "<https://logs.acme.example/app/discover#/?query=service:payment-service|Kibana>" in payment
    assert "2. If *psp-connector* is slow" in payment
    checkout = read(RUNBOOKS / "checkout-service.md")
    assert "follow the Payment Service runbook and" in to_mrkdwn(checkout)  # relative link, no base
    resolved = to_mrkdwn(checkout, base_url="https://github.com/acme/runbooks/blob/main/checkout-service.md")
    assert "<https://github.com/acme/runbooks/blob/main/payment-service.md|Payment Service runbook>" in resolved
    nested = to_mrkdwn("3. first\n4. second\n   - inner _em_\n     1. deep ~~old~~\n\n> quoted **bold**\n> line")
    assert nested == "3. first\n4. second\n   • inner _em_\n     1. deep ~old~\n\n> quoted *bold* line"


def test_tables_are_aligned_text_in_code_blocks() -> None:
    payment = to_mrkdwn(read(RUNBOOKS / "payment-service.md"))
    assert (
        "```\n"
        "Decline reason                   | Usual cause                           | Action\n"
        "---------------------------------+---------------------------------------+-----------------------------------------\n"
        "do_not_honor, insufficient_funds | Issuer side                           | None; inform support if above 15%\n"
        "fraud_rejected                   | fraud-scoring model or rule           | Page data team, roll back the model\n"
        "psp_error, timeout               | PSP outage or psp-connector           | Drain the PSP (see High latency, step 4)\n"
        "invalid_request                  | Our bug, usually right after a deploy | Roll back payment-service\n"
        "```"
    ) in payment
    # A key/value table with an empty header row has no header line.
    key_value = "```\nOwner      | Payments team (#team-payments, payments@acme.example)\nPagerDuty  | service PPAY001,"
    assert key_value in payment
    facts = to_mrkdwn(split_sections(read(TEMPLATES / "runbook-template.md"))[2].body)
    table = facts[facts.index("```\n") + 4 : facts.rindex("\n```")].split("\n")
    assert len(table) == 12 and table[0].startswith("Key                 | Description")
    assert table[2] == "Service name        | What is the name of the service?"  # bold markers dropped
    assert {line.index("|") for line in table if "|" in line} == {20}
    assert table[1].index("+") == 20
    # Alignment from the separator row, and escaping inside the table.
    assert to_mrkdwn("| a | b |\n|:-:|--:|\n| x & y | 1 |\n| z | 100 |") == (
        "```\n  a   |   b\n------+----\nx &amp; y |   1\n  z   | 100\n```"
    )


def test_escaping_and_html() -> None:
    payment = to_mrkdwn(read(RUNBOOKS / "payment-service.md"))
    assert "where state &lt;&gt; 'idle' order by" in payment
    assert "`select pg_terminate_backend(&lt;pid&gt;);`" in payment
    catalog = to_mrkdwn(read(RUNBOOKS / "product-catalog-service.md"))
    assert "Catalog &amp; Discovery team" in catalog
    assert "catalog:v3:product:&lt;sku&gt;" in catalog
    architecture = to_mrkdwn(read(TEMPLATES / "system-architecture-template.md"))
    assert architecture.startswith("*System Architecture for &lt;System&gt;*\n\n*Overview*")
    for path in TEMPLATES.glob("*.md"):
        mrkdwn = to_mrkdwn(read(path))
        assert "<!--" not in mrkdwn and "Use this template" not in mrkdwn
    assert to_mrkdwn("a <b>bold</b> tag<br>next <!-- hidden --> & <https://x.example/?a=1&b=2>") == (
        "a bold tag\nnext  &amp; <https://x.example/?a=1&amp;b=2|https://x.example/?a=1&amp;b=2>"
    )
    for path in ALL_FILES:  # outside links, no raw < or > survives
        assert not re.search(r"[<>]", re.sub(r"<[^<>|\s]+\|[^<>]*>", "", to_mrkdwn(read(path))))


def test_render_cuts_at_section_boundaries_and_continues() -> None:
    markdown = read(RUNBOOKS / "payment-service.md")
    titles = [s.title for s in split_sections(markdown)]
    first = render(markdown, title="payment-service runbook", source_url=SOURCE)
    assert first.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "payment-service runbook"}}
    assert first.next_start == 4
    assert context_texts(first.blocks) == ["Showing sections 1–4 of 8", f"<{SOURCE}|View the source>"]
    shown = "\n\n".join(section_texts(first.blocks))
    assert shown.startswith("*Payment Service runbook*\n`payment-service` authorises")
    assert "*Common issues*" in shown and "*High latency*" not in shown
    assert first.text == "payment-service runbook: " + ", ".join(titles[:4])

    pages, start = [first], first.next_start
    while start is not None:
        pages.append(render(markdown, title="payment-service runbook", source_url=SOURCE, start=start))
        start = pages[-1].next_start
    assert [context_texts(page.blocks)[0] for page in pages] == [
        "Showing sections 1–4 of 8",
        "Showing sections 5–5 of 8",
        "Showing sections 6–6 of 8",
        "Showing sections 7–8 of 8",
    ]
    headings = re.findall(r"^\*([^*\n]+)\*$", "\n".join(t for p in pages for t in section_texts(p.blocks)), re.M)
    assert headings == titles  # every section exactly once, in order


def test_render_whole_page_when_it_fits() -> None:
    markdown = read(RUNBOOKS / "payment-service.md")
    whole = render(markdown, title="Payments", source_url="", max_chars=100_000)
    assert whole.next_start is None
    assert [b["type"] for b in whole.blocks] == ["header", "section", "section", "section"]
    assert context_texts(whole.blocks) == []
    assert "\n\n".join(section_texts(whole.blocks)).count("```") == to_mrkdwn(markdown).count("```")


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda path: path.name)
@pytest.mark.parametrize("max_chars", [300, 800, 2800, 100_000])
def test_render_limits_on_real_files(path: Path, max_chars: int) -> None:
    markdown = read(path)
    count = len(split_sections(markdown))
    start: int | None = 0
    while start is not None:
        page = render(markdown, title=path.stem, source_url=SOURCE, max_chars=max_chars, start=start)
        assert len(page.blocks) <= 50
        texts = section_texts(page.blocks)
        assert texts and all(0 < len(text) <= min(max_chars, BLOCK_LIMIT) for text in texts)
        assert all(fences_balanced(text) for text in texts)  # no block opens a code block it doesn't close
        assert page.next_start is None or start < page.next_start < count
        start = page.next_start


def test_oversized_section_is_cut_at_a_paragraph_boundary() -> None:
    markdown = read(RUNBOOKS / "payment-service.md")
    spike = split_sections(markdown)[5]
    assert spike.title == "Failed payments spike"
    page = render(markdown, title="payment-service runbook", source_url="", max_chars=700, start=5)
    assert page.next_start == 6
    assert context_texts(page.blocks) == ["Showing sections 6–6 of 8, the last one cut short"]
    text = "\n\n".join(section_texts(page.blocks))
    assert len(text) <= 700 and fences_balanced(text)
    assert to_mrkdwn(f"## {spike.title}\n{spike.body}").replace(f"*{spike.title}*\n\n", "").startswith(
        text.removeprefix(f"*{spike.title}*\n")
    )


def test_long_code_block_is_split_with_closed_fences() -> None:
    code = "\n".join(f"line {n:04d} " + "x" * 60 for n in range(200))
    page = render(f"# Dump\n\n```\n{code}\n```\n", title="Dump", source_url="", max_chars=100_000)
    texts = section_texts(page.blocks)
    assert len(texts) > 3 and all(len(t) <= BLOCK_LIMIT and fences_balanced(t) for t in texts)
    lines = [line for t in texts for line in t.split("\n") if line.startswith("line ")]
    assert lines == code.split("\n")


def test_header_is_clipped_and_bad_arguments_are_rejected() -> None:
    page = render("# A\n\ntext", title="t" * 200, source_url="")
    assert len(page.blocks[0]["text"]["text"]) == 150 and page.blocks[0]["text"]["text"].endswith("…")
    with pytest.raises(ValueError):
        render("# A\n\ntext", title="A", source_url="", start=1)
    with pytest.raises(ValueError):
        render("# A\n\ntext", title="A", source_url="", max_chars=10)
