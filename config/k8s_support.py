"""When each Kubernetes minor leaves standard support on EKS and GKE (one table, sourced).

A new cluster must start on a minor in standard support: GKE refuses to create a cluster
on a minor past it in the Regular channel, and EKS bills extended support per cluster hour.
``check`` turns the table into a plan warning within ``WARN_DAYS`` of the date and a config
error once past it.

Sources (as of 2026-12-02):

* EKS: "Amazon EKS Kubernetes release calendar", column "End of standard support",
  https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html (mirrored in
  endoflife-date/endoflife.date products/amazon-eks.md, releases[].eol).
* GKE: "GKE release schedule", column "End of standard support",
  https://cloud.google.com/kubernetes-engine/docs/release-schedule (mirrored in
  endoflife-date/endoflife.date products/google-kubernetes-engine.md, releases[].eol:
  "eol is the End of standard support").

Minors newer than the table are not listed because their dates were not yet published in
the sources above; add a row (with its date) before pinning one.
"""

from __future__ import annotations

from datetime import date

WARN_DAYS = 60

END_OF_STANDARD_SUPPORT: dict[str, dict[str, date]] = {
    "eks": {
        "1.33": date(2026, 7, 29),
        "1.34": date(2026, 12, 2),
        "1.35": date(2027, 3, 27),
    },
    "gke": {
        "1.33": date(2026, 8, 3),
        "1.34": date(2026, 10, 1),
        "1.35": date(2027, 4, 11),
    },
}


def minor(version: str) -> str:
    """``1.35.2-gke.100`` -> ``1.35``."""
    return ".".join(version.split("-")[0].split(".")[:2])


def today() -> date:
    """The date the check runs against (a function, so tests can pin it)."""
    return date.today()


def check(cloud: str, version: str, on: date | None = None) -> tuple[str, str] | None:
    """``("error"|"warning", message)`` for a pinned control-plane version, or None when it
    has more than ``WARN_DAYS`` of standard support left."""
    on = on or today()
    table = END_OF_STANDARD_SUPPORT.get(cloud, {})
    m = minor(version)
    end = table.get(m)
    if end is None:
        known = ", ".join(sorted(table))
        return (
            "error",
            f"{cloud.upper()} {m} has no end-of-standard-support date in config/k8s_support.py (known: {known}); add it with its source",
        )
    newest = max(table, key=lambda v: tuple(int(p) for p in v.split(".")))
    if on > end:
        return "error", (
            f"{cloud.upper()} {m} left standard support on {end.isoformat()}"
            + (
                " (new clusters cannot be created on it)"
                if cloud == "gke"
                else " (extended support is billed per cluster hour)"
            )
            + f": use {newest}"
            + (" or unset it to take the release channel's default" if cloud == "gke" else "")
        )
    days = (end - on).days
    if days <= WARN_DAYS:
        return (
            "warning",
            f"{cloud.upper()} {m} leaves standard support on {end.isoformat()} (in {days} days): plan the upgrade to {newest}",
        )
    return None
