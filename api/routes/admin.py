"""`/v1/admin/apikeys`: list and revoke API keys (admins only). Keys are created with the CLI,
which is the one place a token is ever shown."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from auditagent.store import principals as principal_store
from auditagent.store.principals import Principal

from ..deps import AccessDep, AdminDep
from ..problems import problem_responses
from ..schemas import ApiKey, ApiKeyList

router = APIRouter(prefix="/v1/admin/apikeys", tags=["admin"])


def _key(p: Principal) -> ApiKey:
    return ApiKey(
        id=p.id,
        name=p.name,
        role=p.role,
        tenant=p.tenant,
        token_prefix=p.token_prefix,
        created_at=p.created_at,
        revoked_at=p.revoked_at,
        last_used_at=p.last_used_at,
    )


@router.get("", response_model=ApiKeyList, responses=problem_responses(401, 403, 422, 503))
def list_keys(admin: AdminDep, access: AccessDep) -> ApiKeyList:
    """Keys of the admin's tenant, or every key for an admin without tenant."""
    access.record("apikeys.list", tenant=admin.tenant)
    keys = principal_store.list_principals(access.engine, tenant=admin.tenant)
    return ApiKeyList(items=[_key(p) for p in keys])


@router.post(
    "/{key_id}/revoke", response_model=ApiKey, responses=problem_responses(401, 403, 404, 422, 503)
)
def revoke_key(key_id: uuid.UUID, admin: AdminDep, access: AccessDep) -> ApiKey:
    """Revoke a key (idempotent); its next request gets 401. A tenant-bound admin can revoke
    only keys of its tenant (others are 404)."""
    access.record("apikeys.revoke", tenant=admin.tenant, detail={"key_id": str(key_id)})
    return _key(principal_store.revoke_principal(access.engine, key_id, tenant=admin.tenant))
