"""JUnit XML: test results in the format every CI system reads.

There is no formal standard; this writes the common subset of Ant's JUnit report and
the Jenkins/Surefire schema (``junit-4.xsd`` / ``testmoapp/junitxml``), which GitHub
Actions reporters, GitLab, Jenkins, Azure Pipelines and CircleCI all read::

    <testsuites name tests failures errors skipped time>
      <testsuite name tests failures errors skipped time timestamp hostname>
        <testcase name classname time>
          <failure message type>details</failure>   or <error .../> or <skipped/>
          <system-out>details</system-out>
        </testcase>
      </testsuite>
    </testsuites>

Counts on every element are computed from the cases; times are seconds. Text is
stripped of the characters XML 1.0 cannot hold (control characters other than tab,
newline and carriage return), and messages are kept to one line.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

STATUSES = ("passed", "failure", "error", "skipped")
_BAD_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class JUnitCase:
    """One test case: its status (passed, failure, error, skipped) and what to show.

    ``suite`` groups cases into ``<testsuite>`` elements; ``kind`` is the ``type``
    attribute of a failure or error; ``text`` its body and the case's ``system-out``.
    """

    name: str
    classname: str
    time: float = 0.0
    status: str = "passed"
    message: str = ""
    kind: str = ""
    text: str = ""
    suite: str = "tests"


def clean(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _BAD_XML.sub("", text)


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _counts(cases: Sequence[JUnitCase]) -> dict[str, str]:
    return {
        "tests": str(len(cases)),
        "failures": str(sum(c.status == "failure" for c in cases)),
        "errors": str(sum(c.status == "error" for c in cases)),
        "skipped": str(sum(c.status == "skipped" for c in cases)),
        "time": f"{sum(c.time for c in cases):.3f}",
    }


def junit_tree(
    cases: Sequence[JUnitCase], name: str = "tests", time: float | None = None
) -> ET.ElementTree:
    """The XML tree of ``cases``: one ``<testsuite>`` per distinct ``suite``, in order."""
    for c in cases:
        if c.status not in STATUSES:
            raise ValueError(f"{c.name}: status {c.status!r} is not one of {STATUSES}")
    root = ET.Element("testsuites", {"name": clean(name), **_counts(cases)})
    if time is not None:
        root.set("time", f"{time:.3f}")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")  # noqa: UP017
    host = clean(socket.gethostname())
    suites: dict[str, list[JUnitCase]] = {}
    for c in cases:
        suites.setdefault(c.suite, []).append(c)
    for suite, members in suites.items():
        el = ET.SubElement(
            root,
            "testsuite",
            {"name": clean(suite), **_counts(members), "timestamp": stamp, "hostname": host},
        )
        for c in members:
            tc = ET.SubElement(
                el,
                "testcase",
                {"name": clean(c.name), "classname": clean(c.classname), "time": f"{c.time:.3f}"},
            )
            if c.status in ("failure", "error"):
                sub = ET.SubElement(
                    tc, c.status, {"message": _one_line(c.message), "type": clean(c.kind)}
                )
                sub.text = clean(c.text)
            elif c.status == "skipped":
                ET.SubElement(tc, "skipped", {"message": _one_line(c.message)})
            if c.text:
                ET.SubElement(tc, "system-out").text = clean(c.text)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(
    path: str | Path, cases: Sequence[JUnitCase], name: str = "tests", time: float | None = None
) -> Path:
    """Write ``cases`` as JUnit XML (UTF-8, with an XML declaration) to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    junit_tree(cases, name, time).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path
