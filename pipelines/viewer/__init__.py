"""`fifa-data view`: a static review site over an annotation run, a build or a release.

>>> from fifa.pipelines.viewer import build_site, ViewerConfig
>>> build_site("annotated/", "site/", ViewerConfig(page_size=50))  # doctest: +SKIP

Open ``site/index.html`` in a browser (no server needed). See docs/viewer.md.
"""

from .site import SiteError, SiteSummary, ViewerConfig, build_site
from .sources import SourceError, detect

__all__ = ["SiteError", "SiteSummary", "SourceError", "ViewerConfig", "build_site", "detect"]
