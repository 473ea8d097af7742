# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection options of the modules that talk to an OpenAI-compatible server."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_key:
    description:
      - "API key, sent as C(Authorization: Bearer <api_key>)."
      - Without it no C(Authorization) header is sent.
    type: str
  validate_certs:
    description: Verify the server's TLS certificate for an C(https) URL.
    type: bool
    default: true
  ca_path:
    description: PEM file of the certificate authorities to verify the server's certificate with.
    type: path
  use_proxy:
    description: Use the proxy the environment sets (C(https_proxy), C(http_proxy), C(no_proxy)).
    type: bool
    default: true
  headers:
    description: Extra HTTP headers to send with each request.
    type: dict
    default: {}
"""
