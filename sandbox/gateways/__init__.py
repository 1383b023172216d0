"""The six marketplace gateways of the sandbox, one module per platform, each an ASGI app in
that platform's own protocol (see each module's docstring and ../shared/reference/channels.md).

`GATEWAYS` maps a channel id to its gateway class, one per marketplace of config/channels.yaml
(tests/sandbox/test_channels.py checks); `Gateway(orders, credentials, faults=...)` builds one,
`.app` is the ASGI app, `.credentials` the sandbox.json entry (without base_url). Each class
also builds its platform's push messages (`build_push`, sent by `sandbox.push`).
"""

from __future__ import annotations

from sandbox.gateways.base import Gateway
from sandbox.gateways.douyin import DouyinGateway
from sandbox.gateways.jd import JdGateway
from sandbox.gateways.kuaishou import KuaishouGateway
from sandbox.gateways.pdd import PddGateway
from sandbox.gateways.taobao import TaobaoGateway
from sandbox.gateways.youzan import YouzanGateway

GATEWAYS: dict[str, type[Gateway]] = {
    "taobao": TaobaoGateway,
    "jd": JdGateway,
    "douyin": DouyinGateway,
    "pdd": PddGateway,
    "kuaishou": KuaishouGateway,
    "youzan": YouzanGateway,
}

__all__ = ["GATEWAYS", "Gateway"]
