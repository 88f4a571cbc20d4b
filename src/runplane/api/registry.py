"""Every surface runplane serves. Adding one is a package with a `SURFACE` and a line here."""

from __future__ import annotations

from runplane.api.compat.boomi.surface import SURFACE as BOOMI
from runplane.api.compat.mulesoft.surface import SURFACE as MULESOFT
from runplane.api.compat.robocorp.surface import SURFACE as ROBOCORP
from runplane.api.native.surface import SURFACE as NATIVE
from runplane.api.oauth.surface import SURFACE as OAUTH2
from runplane.api.surface import Surfaces
from runplane.web.surface import SURFACE as CONSOLE

SURFACES = Surfaces([NATIVE, OAUTH2, MULESOFT, ROBOCORP, BOOMI, CONSOLE])
