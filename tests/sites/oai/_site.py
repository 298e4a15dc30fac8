"""A fake OAI-PMH repository (oai_dc, sets, resumption tokens, from=, deleted records) over `_oai/records.json`."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from ssehub.demo.server import Reply, SiteRequest

PAGE = 2  # records per ListRecords answer: the fixture's five records in the set take three answers
HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><responseDate>2024-01-01T00:00:00Z</responseDate>')
DC = ('<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
      'xmlns:dc="http://purl.org/dc/elements/1.1/">{}</oai_dc:dc>')


def _xml(body: str) -> Reply:
    return Reply(200, HEAD + body + "</OAI-PMH>", {"Content-Type": "text/xml; charset=utf-8"})


def _error(code: str, message: str) -> Reply:
    return _xml(f'<request>__BASE__/oai</request><error code="{code}">{escape(message)}</error>')


def _record(r: dict[str, Any]) -> str:
    sets = "".join(f"<setSpec>{escape(s)}</setSpec>" for s in r.get("sets", []))
    status = ' status="deleted"' if r.get("deleted") else ""
    header = f"<header{status}><identifier>{escape(r['identifier'])}</identifier><datestamp>{r['datestamp']}</datestamp>{sets}</header>"
    if r.get("deleted"):
        return f"<record>{header}</record>"
    fields = "".join(f"<dc:{name}>{escape(v)}</dc:{name}>" for name, values in r["dc"].items() for v in values)
    return f"<record>{header}<metadata>{DC.format(fields)}</metadata></record>"


def handle(request: SiteRequest) -> Reply | None:
    if request.path != "/oai":
        return None
    records = json.loads((request.root / "_oai" / "records.json").read_text(encoding="utf-8"))
    verb = request.arg("verb")
    if verb == "Identify":
        return _xml("<Identify><repositoryName>Fixture repository</repositoryName><granularity>YYYY-MM-DD</granularity></Identify>")
    if verb != "ListRecords":
        return _error("badVerb", f"verb {verb!r} is not supported here")
    if token := request.arg("resumptionToken"):
        try:
            args = json.loads(token)
        except ValueError:
            return _error("badResumptionToken", "unknown token")
    else:
        args = {"prefix": request.arg("metadataPrefix"), "set": request.arg("set"), "from": request.arg("from"), "offset": 0}
    if args["prefix"] != "oai_dc":
        return _error("cannotDisseminateFormat", f"{args['prefix']!r} is not served")
    chosen = [r for r in records if (not args["set"] or args["set"] in r.get("sets", [])) and (not args["from"] or r["datestamp"] >= args["from"])]
    if not chosen:
        return _error("noRecordsMatch", "no records match")
    offset = args["offset"]
    body = "".join(_record(r) for r in chosen[offset : offset + PAGE])
    if offset + PAGE < len(chosen):
        next_token = escape(json.dumps({**args, "offset": offset + PAGE}))
        body += f'<resumptionToken completeListSize="{len(chosen)}" cursor="{offset}">{next_token}</resumptionToken>'
    elif token:
        body += f'<resumptionToken completeListSize="{len(chosen)}" cursor="{offset}"/>'
    return _xml(f"<request>__BASE__/oai</request><ListRecords>{body}</ListRecords>")
