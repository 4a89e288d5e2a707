"""Enumeration management (group 10), answered exactly as Zephyr 4.4's native_sim does.

Groups are listed in Zephyr's registration order — its handlers sit in an iterable
section sorted by name, so ``enum mgmt``, ``fs mgmt``, ``img mgmt``, ``os mgmt``,
``stat mgmt``, then the TinyOps runtime group — and ``handlers`` is the size of the group's handler
array: its highest command id + 1. Details for unknown groups are left out silently;
an index past the last group is ``ENUM_MGMT_ERR_INDEX_TOO_LARGE``.
"""

from __future__ import annotations

from smp import enumeration_management as em

from device_drivers.virtual.smp_server import Dispatcher, Fail

GROUP = 10


class EnumGroup:
    def __init__(self, d: Dispatcher) -> None:
        self._d = d

    def register(self, d: Dispatcher) -> None:
        d.names[GROUP] = "enum mgmt"
        d.error_classes[GROUP] = em.EnumManagementErrorV2
        d.add(em.GroupCountRequest, lambda _r: em.GroupCountResponse(count=len(self.groups())))
        d.add(em.ListOfGroupsRequest, lambda _r: em.ListOfGroupsResponse(groups=self.groups()))
        d.add(em.GroupIdRequest, self.single)
        d.add(em.GroupDetailsRequest, self.details)

    def groups(self) -> tuple[int, ...]:
        present = {group for group, _op, _cmd in self._d.routes}
        return tuple(sorted(present, key=lambda g: (self._d.names.get(g, f"~{g:05d}"), g)))

    def handlers(self, group: int) -> int:
        return 1 + max(cmd for g, _op, cmd in self._d.routes if g == group)

    def name(self, group: int) -> str:
        return self._d.names.get(group, f"group {group}")

    def single(self, req: em.GroupIdRequest) -> em.GroupIdResponse:
        groups = self.groups()
        index = req.index or 0
        if index >= len(groups):
            raise Fail(em.ENUM_MGMT_ERR.ENUM_MGMT_ERR_INDEX_TOO_LARGE, GROUP)
        return em.GroupIdResponse(group=groups[index],
                                  end=True if index == len(groups) - 1 else None)

    def details(self, req: em.GroupDetailsRequest) -> em.GroupDetailsResponse:
        wanted = None if req.groups is None else {int(g) for g in req.groups}
        return em.GroupDetailsResponse(groups=tuple(
            em.GroupDetails(group=g, name=self.name(g), handlers=self.handlers(g))
            for g in self.groups() if wanted is None or g in wanted))
