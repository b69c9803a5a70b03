"""Accounts' use cases: each one a unit of work (rows, rules of ``domain``, events in the outbox).

``api`` parses and authorises, then calls one method here; nothing here knows Flask requests.
Errors are raised as ``Problem`` (French, problem+json).

Joining another commune (``POST /api/accounts/me/communes``)
-------------------------------------------------------------
One household, one main e-mail, one account, valid in every commune. When an agent of commune
B registers a household (``POST /communes/B/families``) with an e-mail that already has a
parent account (created by commune A), no second account is made: the household already
exists. Instead the agent's request makes a membership *offer* in B: a ``Membership`` row with
status ``pending``, a new family code of B, bound to that account. The agent receives the code
(201, ``membership_status: "pending"``, the household's details withheld until it joins) and
gives it to the family out of band (letter, counter, phone). The parent then joins with
``{commune: "B", family_code}``: the offer becomes an ``active`` membership, which publishes
``accounts.membership.created`` and ``accounts.family.updated`` and answers with
``X-Portail-Principal-Changed: 1``. A code works once, only for the account it was made to and
only in its commune: any other code answers 422. The e-mail of an agent or admin account, or of
a household already in (or already offered) commune B, answers 409.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from services.common import outbox
from services.common.auth import Principal
from services.common.config import Settings
from services.common.db import Database
from services.common.errors import Problem, problem

from . import domain, events, second_factor
from .models import Account, AgentRole, Child, Commune, Family, Guardian, Membership, News, Token

EMAIL_TAKEN = "Un compte existe déjà avec cette adresse e-mail."
LINK_UNKNOWN = "Ce lien n'est pas valable : vérifiez qu'il est complet, ou demandez-en un nouveau."
LINK_GONE = {
    ("activation", "expired"): "Ce lien d'activation a expiré. Demandez un nouveau lien : il "
                               "vous sera envoyé par e-mail.",
    ("activation", "used"): "Ce lien d'activation a déjà servi. Si votre compte est activé, "
                            "connectez-vous ; sinon, demandez un nouveau lien.",
    ("reset", "expired"): "Ce lien de réinitialisation a expiré. Faites une nouvelle demande de "
                          "réinitialisation du mot de passe.",
    ("reset", "used"): "Ce lien de réinitialisation a déjà servi. Faites une nouvelle demande "
                       "si besoin.",
}
RESET_ACCEPTED = ("Si un compte actif correspond à cette adresse, un e-mail vient de lui être "
                  "envoyé avec un lien pour choisir un nouveau mot de passe (valable 1 heure).")
RENEW_ACCEPTED = ("Si ce lien correspond à une invitation en attente, un nouveau lien vient "
                  "d'être envoyé par e-mail.")


def now() -> datetime:
    return datetime.now(UTC)


class LinkGone(Problem):
    """410 for a used or expired link; ``status`` says which (``expired`` or ``used``), as the
    contract's ``GET /activation/{token}`` answer does with ``valid``."""

    def __init__(self, kind: str, state: str):
        super().__init__(410, LINK_GONE[(kind, state)])
        self.state = state

    def get_response(self, environ=None, scope=None):
        response = problem(410, self.detail)
        body = json.loads(response.get_data())
        body["status"] = self.state
        response.set_data(json.dumps(body, ensure_ascii=False))
        return response


def _invalid(errors: dict[str, list[str]], detail: str | None = None) -> Problem:
    return Problem(422, detail, errors=errors)


def _rule(error: domain.RuleError) -> Problem:
    return Problem(422, error.detail, errors=error.errors)


# Views ---------------------------------------------------------------------------------------
def guardian_view(guardian: Guardian) -> dict[str, Any]:
    return {**events.guardian_data(guardian), "relation": guardian.relation}


def child_view(child: Child) -> dict[str, Any]:
    return {"id": child.id, "first_name": child.first_name, "last_name": child.last_name,
            "birth_date": child.birth_date, "school": child.school,
            "class_name": child.class_name, "allergies": bool(child.allergies),
            "allergy_notes": child.allergy_notes}


def family_view(family: Family) -> dict[str, Any]:
    return {"id": family.id, "family_name": family.family_name, "address": family.address,
            "guardians": [guardian_view(g) for g in family.guardians],
            "children": [child_view(c) for c in family.children], "version": family.version}


def agent_family_view(family: Family, membership: Membership,
                      account: Account | None) -> dict[str, Any]:
    pending = membership.status == "pending"
    view = family_view(family)
    if pending:
        # Not yet theirs: the household's details stay with the communes it belongs to.
        view.update(address=None, guardians=[], children=[])
    return {
        **view,
        "family_code": membership.family_code,
        "email": account.email if account else None,
        "status": "invited" if pending or account is None else account.status,
        "invited_at": membership.created_at if pending else (account.invited_at
                                                             if account else None),
        "membership_status": membership.status,
        "joined_at": membership.joined_at,
    }


def news_view(news: News) -> dict[str, Any]:
    return {"id": news.id, "title": news.title, "body": news.body,
            "published_at": news.published_at}


@dataclass
class Operations:
    db: Database
    public_url: str
    activation_ttl: timedelta

    @classmethod
    def of(cls, db: Database, settings: Settings) -> Operations:
        return cls(db, settings.public_url.rstrip("/"),
                   domain.activation_ttl(settings.extra.get("ACTIVATION_TTL_DAYS")))

    # helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _commune(session: Session, slug: str) -> Commune:
        commune = session.scalar(select(Commune).where(Commune.slug == slug))
        if commune is None:
            raise Problem(404, "Cette commune n'existe pas.")
        return commune

    @staticmethod
    def _family(session: Session, family_id: str | None, *, lock: bool = False) -> Family:
        if not family_id:
            raise Problem(404, "Aucun foyer n'est associé à ce compte.")
        query = select(Family).where(Family.id == family_id).options(
            selectinload(Family.guardians), selectinload(Family.children),
            selectinload(Family.memberships).selectinload(Membership.commune))
        if lock:
            query = query.with_for_update(of=Family)
        family = session.scalar(query)
        if family is None:
            raise Problem(404, "Ce foyer n'existe pas.")
        return family

    @staticmethod
    def _account_of_family(session: Session, family_id: str) -> Account | None:
        return session.scalar(select(Account).where(Account.family_id == family_id)
                              .order_by(Account.created_at).limit(1))

    def _family_code(self, session: Session, commune_id: str) -> str:
        for _ in range(20):
            code = domain.new_family_code()
            taken = session.scalar(select(Membership.id).where(
                Membership.commune_id == commune_id, Membership.family_code == code))
            if taken is None:
                return code
        raise Problem(503, "Impossible d'attribuer un code famille : réessayez.")

    def _activation_link(self, session: Session, account: Account,
                         commune: Commune) -> tuple[str, datetime]:
        """A new activation link; the earlier unused ones stop working (they show expired)."""
        moment = now()
        session.execute(update(Token).where(
            Token.account_id == account.id, Token.kind == domain.ACTIVATION,
            Token.used_at.is_(None), Token.expires_at > moment).values(expires_at=moment))
        raw, digest = domain.new_token()
        expires_at = moment + self.activation_ttl
        session.add(Token(kind=domain.ACTIVATION, token_hash=digest, account_id=account.id,
                          commune_id=commune.id, expires_at=expires_at))
        account.invited_at = moment
        return f"{self.public_url}/activation/{raw}", expires_at

    @staticmethod
    def _bump(family: Family) -> None:
        family.version += 1
        family.updated_at = now()

    # communes ----------------------------------------------------------------------------------
    def create_commune(self, payload: dict[str, Any]) -> Commune:
        settings = domain.CommuneSettings(**{
            **payload["settings"], "modules": tuple(payload["settings"].get("modules", ()))})
        try:
            with self.db.transaction() as session:
                commune = Commune(slug=payload["slug"], name=payload["name"],
                                  settings=settings.as_dict(), version=1)
                session.add(commune)
                session.flush()
                outbox.add(session, events.commune_created(commune))
        except IntegrityError as exc:
            raise Problem(409, "Une commune utilise déjà cet identifiant.",
                          errors={"slug": ["Cet identifiant est déjà utilisé."]}) from exc
        return commune

    def get_commune(self, slug: str) -> Commune:
        with self.db.sessions() as session:
            return self._commune(session, slug)

    def update_commune(self, slug: str, payload: dict[str, Any]) -> Commune:
        with self.db.transaction() as session:
            commune = session.scalar(select(Commune).where(Commune.slug == slug)
                                     .with_for_update())
            if commune is None:
                raise Problem(404, "Cette commune n'existe pas.")
            name = payload.get("name", commune.name)
            settings = domain.merge_commune_settings(commune.settings,
                                                     payload.get("settings") or {})
            if name == commune.name and settings == commune.settings:
                return commune
            commune.name = name
            commune.settings = settings
            commune.version += 1
            outbox.add(session, events.commune_updated(commune))
        return commune

    # households, agents' side --------------------------------------------------------------------
    def create_family(self, principal: Principal, slug: str,
                      payload: dict[str, Any]) -> dict[str, Any]:
        email = domain.normalise_email(payload["email"])
        try:
            with self.db.transaction() as session:
                commune = self._commune(session, slug)
                account = session.scalar(select(Account).where(Account.email == email))
                if account is not None:
                    return self._offer_membership(session, principal, commune, account)
                return self._new_family(session, principal, commune, email, payload)
        except IntegrityError as exc:  # the same e-mail registered at the same moment
            raise Problem(409, EMAIL_TAKEN, errors={"email": [EMAIL_TAKEN]}) from exc

    def _new_family(self, session: Session, principal: Principal, commune: Commune, email: str,
                    payload: dict[str, Any]) -> dict[str, Any]:
        moment = now()
        family = Family(family_name=payload["family_name"],
                        sort_key=domain.sort_key(payload["family_name"]),
                        search_text=domain.search_text(payload["family_name"],
                                                       payload["children"]),
                        address=domain.normalise_address(payload.get("address")), version=1,
                        created_at=moment, updated_at=moment)
        guardians = domain.with_a_payer(payload["guardians"])
        if not guardians[0].get("email") and not any(g.get("email") == email
                                                     for g in guardians):
            guardians[0] = {**guardians[0], "email": email}
        family.guardians = [Guardian(position=i, **g) for i, g in enumerate(guardians)]
        family.children = [Child(position=i, **c) for i, c in enumerate(payload["children"])]
        session.add(family)
        session.flush()
        account = Account(email=email, status="invited", family_id=family.id,
                          created_at=moment)
        session.add(account)
        membership = Membership(family=family, commune=commune,
                                family_code=self._family_code(session, commune.id),
                                status="active", account_id=None, created_by=principal.account_id,
                                created_at=moment, joined_at=moment)
        session.add(membership)
        session.flush()
        url, expires_at = self._activation_link(session, account, commune)
        outbox.add(session, events.family_updated(family))
        outbox.add(session, events.membership_created(membership, commune))
        outbox.add(session, events.family_invited(family, account, commune,
                                                  membership.family_code, url, expires_at))
        return agent_family_view(family, membership, account)

    def _offer_membership(self, session: Session, principal: Principal, commune: Commune,
                          account: Account) -> dict[str, Any]:
        if account.family_id is None or session.get(Family, account.family_id) is None:
            raise Problem(409, EMAIL_TAKEN, errors={"email": [
                "Cette adresse e-mail est celle d'un compte qui n'est pas un compte famille."]})
        family = self._family(session, account.family_id, lock=True)
        existing = next((m for m in family.memberships if m.commune_id == commune.id), None)
        if existing is not None:
            message = (f"Ce foyer est déjà inscrit dans votre commune "
                       f"(code famille {existing.family_code})."
                       if existing.status == "active" else
                       f"Ce foyer a déjà reçu un code famille de votre commune "
                       f"({existing.family_code}) : il lui reste à rejoindre la commune.")
            raise Problem(409, message, errors={"email": [message]})
        membership = Membership(family=family, commune=commune,
                                family_code=self._family_code(session, commune.id),
                                status="pending", account_id=account.id,
                                created_by=principal.account_id, created_at=now())
        session.add(membership)
        session.flush()
        return agent_family_view(family, membership, account)

    def _membership_in(self, session: Session, commune: Commune,
                       family_id: str) -> Membership:
        membership = session.scalar(select(Membership).where(
            Membership.commune_id == commune.id, Membership.family_id == family_id))
        if membership is None:
            raise Problem(404, "Ce foyer n'existe pas dans cette commune.")
        return membership

    def list_families(self, slug: str, q: str, cursor: str | None) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            children_count = (select(func.count(Child.id)).where(Child.family_id == Family.id)
                              .correlate(Family).scalar_subquery())
            query = (
                select(Family, Membership, Account.email, Account.status, children_count)
                .join(Membership, and_(Membership.family_id == Family.id,
                                       Membership.commune_id == commune.id))
                .outerjoin(Account, Account.family_id == Family.id)
                .order_by(Family.sort_key, Family.id)
                .limit(domain.FAMILIES_PAGE + 1)
            )
            q = q.strip()
            if q:
                query = query.where(or_(
                    Family.search_text.contains(domain.sort_key(q), autoescape=True),
                    Account.email.contains(q.lower(), autoescape=True),
                    Membership.family_code == domain.normalise_family_code(q),
                ))
            if cursor:
                try:
                    after = domain.decode_cursor(cursor, 2)
                except domain.RuleError as exc:
                    raise _rule(exc) from exc
                query = query.where(tuple_(Family.sort_key, Family.id) > tuple(after))
            rows = session.execute(query).all()
        items = [{
            "id": family.id, "family_name": family.family_name,
            "family_code": membership.family_code, "email": email,
            "status": "invited" if membership.status == "pending" else (status or "invited"),
            "children_count": count, "membership_status": membership.status,
        } for family, membership, email, status, count in rows[:domain.FAMILIES_PAGE]]
        next_cursor = None
        if len(rows) > domain.FAMILIES_PAGE:
            last = rows[domain.FAMILIES_PAGE - 1][0]
            next_cursor = domain.encode_cursor([last.sort_key, last.id])
        return {"items": items, "next": next_cursor}

    def family_for_agent(self, slug: str, family_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            membership = self._membership_in(session, commune, family_id)
            family = self._family(session, family_id)
            return agent_family_view(family, membership,
                                     self._account_of_family(session, family_id))

    def update_family_as_agent(self, slug: str, family_id: str,
                               patch: dict[str, Any]) -> dict[str, Any]:
        """An agent applies a change that needed a proof (address, allergy, child details)."""
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            membership = self._membership_in(session, commune, family_id)
            family = self._family(session, family_id, lock=True)
            if "version" in patch and patch["version"] != family.version:
                raise Problem(409, "Ce foyer a été modifié entre-temps : rechargez la page puis "
                                   "recommencez.")
            children = {child.id: child for child in family.children}
            unknown = [c["id"] for c in patch.get("children", []) if c.get("id")
                       and c["id"] not in children]
            if unknown:
                raise _invalid({"children": ["Cet enfant n'appartient pas à ce foyer."]})
            if "family_name" in patch:
                family.family_name = patch["family_name"]
            if "address" in patch:
                family.address = domain.normalise_address(patch["address"])
            for position, item in enumerate(patch.get("children", [])):
                fields_ = {k: v for k, v in item.items() if k != "id"}
                if item.get("id"):
                    for field, value in fields_.items():
                        setattr(children[item["id"]], field, value)
                    continue
                missing = [f for f in ("first_name", "last_name", "birth_date")
                           if not fields_.get(f)]
                if missing:
                    raise _invalid({f"children.{position}.{f}": ["Ce champ est obligatoire."]
                                    for f in missing})
                family.children.append(Child(position=len(family.children), **fields_))
            self._bump(family)
            session.flush()
            outbox.add(session, events.family_updated(family))
            return agent_family_view(family, membership,
                                     self._account_of_family(session, family_id))

    def reinvite(self, slug: str, family_id: str) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            membership = self._membership_in(session, commune, family_id)
            family = self._family(session, family_id)
            account = self._account_of_family(session, family_id)
            if membership.status == "pending":
                raise Problem(409, "Ce foyer a déjà un compte sur le portail : remettez-lui son "
                                   f"code famille ({membership.family_code}) pour qu'il "
                                   "rejoigne votre commune depuis son espace.")
            if account is None or account.status != "invited":
                raise Problem(409, "Ce compte est déjà activé : la famille se connecte avec son "
                                   "mot de passe (ou le réinitialise).")
            url, expires_at = self._activation_link(session, account, commune)
            outbox.add(session, events.family_invited(family, account, commune,
                                                      membership.family_code, url, expires_at))
        return {"expires_at": expires_at}

    # activation ----------------------------------------------------------------------------------
    def _token(self, session: Session, kind: str, raw: str) -> tuple[Token, Account] | None:
        if not domain.plausible_token(raw):
            return None
        token = session.scalar(select(Token).where(Token.token_hash == domain.token_hash(raw),
                                                   Token.kind == kind))
        if token is None:
            return None
        return token, session.get(Account, token.account_id)

    def _usable(self, session: Session, kind: str, raw: str) -> tuple[Token, Account]:
        """The token and its account, or the 404 / 410 the contract says."""
        found = self._token(session, kind, raw)
        wanted = "invited" if kind == domain.ACTIVATION else "active"
        if found is None or found[1].status not in (wanted, "active"):
            raise Problem(404, LINK_UNKNOWN)
        token, account = found
        state = domain.token_state(token.expires_at, token.used_at, now())
        if state == "valid" and account.status != wanted:
            state = "used"  # activated meanwhile through another link
        if state != "valid":
            raise LinkGone(kind, state)
        return token, account

    def activation_info(self, raw: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            token, account = self._usable(session, domain.ACTIVATION, raw)
            family = self._family(session, account.family_id) if account.family_id else None
            view = family_view(family) if family else {"family_name": None, "guardians": [],
                                                       "children": []}
            return {"status": "valid", "email": account.email,
                    "family_name": view["family_name"], "guardians": view["guardians"],
                    "children": view["children"], "expires_at": token.expires_at}

    def _consume(self, session: Session, token: Token) -> None:
        """Mark the token used, once: of two simultaneous requests only one passes."""
        moment = now()
        done = session.execute(update(Token).where(
            Token.id == token.id, Token.used_at.is_(None), Token.expires_at > moment,
        ).values(used_at=moment))
        if done.rowcount != 1:
            state = "used" if session.scalar(select(Token.used_at).where(
                Token.id == token.id)) else "expired"
            raise LinkGone(token.kind, state)

    def activate(self, raw: str, password: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            token, account = self._usable(session, domain.ACTIVATION, raw)
        problems = domain.password_problems(password, account.email)
        if problems:
            raise _invalid({"password": problems})
        password_hash = domain.hash_password(password)
        with self.db.transaction() as session:
            self._consume(session, token)
            moment = now()
            done = session.execute(update(Account).where(
                Account.id == account.id, Account.status == "invited",
            ).values(password_hash=password_hash, status="active", activated_at=moment,
                     password_changed_at=moment))
            if done.rowcount != 1:
                raise LinkGone(domain.ACTIVATION, "used")
            session.execute(update(Token).where(
                Token.account_id == account.id, Token.kind == domain.ACTIVATION,
                Token.used_at.is_(None)).values(used_at=moment))
            if account.family_id:
                outbox.add(session, events.family_activated(account))
        return {"status": "active", "account_id": account.id, "email": account.email,
                "family_id": account.family_id,
                "detail": "Votre compte est activé : vous pouvez vous connecter."}

    def renew_activation(self, raw: str) -> None:
        """A new link for a real, unused activation token; silent otherwise."""
        with self.db.transaction() as session:
            found = self._token(session, domain.ACTIVATION, raw)
            if found is None:
                return
            token, account = found
            if token.used_at is not None or account.status != "invited" or not account.family_id:
                return
            family = session.get(Family, account.family_id)
            commune = session.get(Commune, token.commune_id) if token.commune_id else None
            membership = session.scalar(select(Membership).where(
                Membership.family_id == account.family_id, Membership.status == "active",
                *([Membership.commune_id == commune.id] if commune else []),
            ).order_by(Membership.created_at).limit(1))
            if family is None or membership is None:
                return
            commune = commune or session.get(Commune, membership.commune_id)
            url, expires_at = self._activation_link(session, account, commune)
            outbox.add(session, events.family_invited(family, account, commune,
                                                      membership.family_code, url, expires_at))

    # password reset ------------------------------------------------------------------------------
    def request_reset(self, email: str) -> None:
        """A reset link for an active account; nothing otherwise (the caller cannot tell)."""
        with self.db.transaction() as session:
            account = session.scalar(select(Account).where(
                Account.email == domain.normalise_email(email)))
            if account is None or account.status != "active":
                return
            raw, digest = domain.new_token()
            expires_at = now() + domain.RESET_TTL
            session.add(Token(kind=domain.RESET, token_hash=digest, account_id=account.id,
                              expires_at=expires_at))
            url = f"{self.public_url}/mot-de-passe/reinitialiser/{raw}"
            outbox.add(session, events.password_reset_requested(account, url, expires_at))

    def reset_info(self, raw: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            token, account = self._usable(session, domain.RESET, raw)
            return {"status": "valid", "email": account.email, "expires_at": token.expires_at}

    def confirm_reset(self, raw: str, password: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            token, account = self._usable(session, domain.RESET, raw)
        problems = domain.password_problems(password, account.email)
        if problems:
            raise _invalid({"password": problems})
        password_hash = domain.hash_password(password)
        with self.db.transaction() as session:
            self._consume(session, token)
            moment = now()
            done = session.execute(update(Account).where(
                Account.id == account.id, Account.status == "active",
            ).values(password_hash=password_hash, password_changed_at=moment))
            if done.rowcount != 1:
                raise Problem(404, LINK_UNKNOWN)
            self._end_reset_links(session, account.id, moment)
        return {"status": "changed", "account_id": account.id, "email": account.email,
                "family_id": account.family_id,
                "detail": "Votre mot de passe est modifié : vous pouvez vous connecter."}

    @staticmethod
    def _end_reset_links(session: Session, account_id: str, moment: datetime) -> None:
        session.execute(update(Token).where(
            Token.account_id == account_id, Token.kind == domain.RESET,
            Token.used_at.is_(None)).values(used_at=moment))

    # the caller's own account ------------------------------------------------------------------
    def me(self, principal: Principal) -> dict[str, Any]:
        with self.db.sessions() as session:
            account = session.get(Account, principal.account_id)
            if account is None:
                raise Problem(404, "Ce compte n'existe pas.")
            claims = principal_claims(session, account)
            codes = {m.commune.slug: m.family_code for m in self._memberships(session, account)}
        communes = [{"slug": slug, "name": info["name"], "roles": info["roles"],
                     **({"family_code": codes[slug]} if slug in codes else {})}
                    for slug, info in sorted(claims["communes"].items(),
                                             key=lambda item: item[1]["name"])]
        return {**claims, "communes": communes}

    @staticmethod
    def _memberships(session: Session, account: Account) -> list[Membership]:
        if not account.family_id:
            return []
        return list(session.scalars(
            select(Membership).where(Membership.family_id == account.family_id,
                                     Membership.status == "active")
            .options(selectinload(Membership.commune))
            .order_by(Membership.joined_at, Membership.created_at)))

    def my_communes(self, principal: Principal) -> dict[str, Any]:
        with self.db.sessions() as session:
            self._family(session, principal.family_id)
            memberships = list(session.scalars(
                select(Membership).where(Membership.family_id == principal.family_id,
                                         Membership.status == "active")
                .options(selectinload(Membership.commune))
                .order_by(Membership.joined_at, Membership.created_at)))
            return {"items": [{"slug": m.commune.slug, "name": m.commune.name,
                               "family_code": m.family_code, "joined_at": m.joined_at}
                              for m in memberships]}

    def my_family(self, principal: Principal) -> dict[str, Any]:
        with self.db.sessions() as session:
            return family_view(self._family(session, principal.family_id))

    def update_my_family(self, principal: Principal, patch: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as session:
            family = self._family(session, principal.family_id, lock=True)
            if "version" in patch and patch["version"] != family.version:
                raise Problem(409, "Votre foyer a été modifié entre-temps : rechargez la page "
                                   "puis recommencez.")
            try:
                change = domain.plan_profile_change(family_view(family), patch)
            except domain.RuleError as exc:
                raise _rule(exc) from exc
            if not change.empty:
                for guardian in family.guardians:
                    for field, value in change.guardians.get(guardian.id, {}).items():
                        setattr(guardian, field, value)
                self._bump(family)
                session.flush()
                outbox.add(session, events.family_updated(family))
            return family_view(family)

    def change_password(self, principal: Principal, current: str, new: str) -> None:
        with self.db.sessions() as session:
            account = session.get(Account, principal.account_id)
        if account is None or account.status != "active":
            raise Problem(404, "Ce compte n'existe pas.")
        errors: dict[str, list[str]] = {}
        if not domain.verify_password(account.password_hash, current):
            errors["current_password"] = ["Mot de passe actuel incorrect."]
        problems = domain.password_problems(new, account.email)
        if not problems and new == current:
            problems = ["Choisissez un mot de passe différent de l'actuel."]
        if problems:
            errors["new_password"] = problems
        if errors:
            raise _invalid(errors)
        password_hash = domain.hash_password(new)
        with self.db.transaction() as session:
            moment = now()
            done = session.execute(update(Account).where(
                Account.id == account.id, Account.password_hash == account.password_hash,
            ).values(password_hash=password_hash, password_changed_at=moment))
            if done.rowcount != 1:
                raise Problem(409, "Le mot de passe vient d'être modifié par ailleurs : "
                                   "recommencez.")
            self._end_reset_links(session, account.id, moment)

    def join_commune(self, principal: Principal, slug: str, code: str) -> dict[str, Any]:
        wrong = {"family_code": ["Ce code famille ne correspond à aucune invitation de cette "
                                 "commune pour votre foyer. Vérifiez-le auprès de la mairie."]}
        with self.db.transaction() as session:
            family = self._family(session, principal.family_id, lock=True)
            account = session.get(Account, principal.account_id)
            commune = session.scalar(select(Commune).where(Commune.slug == slug))
            if commune is None:
                raise _invalid({"commune": ["Cette commune n'utilise pas le portail."]})
            already = next((m for m in family.memberships
                            if m.commune_id == commune.id and m.status == "active"), None)
            if already is not None:
                raise Problem(409, f"Votre foyer fait déjà partie de {commune.name}.",
                              errors={"commune": ["Votre foyer fait déjà partie de cette "
                                                  "commune."]})
            offer = session.scalar(select(Membership).where(
                Membership.commune_id == commune.id,
                Membership.family_code == domain.normalise_family_code(code)))
            if (offer is None or offer.status != "pending" or offer.family_id != family.id
                    or account is None or offer.account_id != account.id):
                raise _invalid(wrong, "Code famille incorrect.")
            moment = now()
            done = session.execute(update(Membership).where(
                Membership.id == offer.id, Membership.status == "pending",
            ).values(status="active", joined_at=moment))
            if done.rowcount != 1:
                raise _invalid(wrong, "Code famille incorrect.")
            session.refresh(offer)
            self._bump(family)
            session.flush()
            session.expire(family, ["memberships"])
            outbox.add(session, events.membership_created(offer, commune))
            outbox.add(session, events.family_updated(family))
            return {"slug": commune.slug, "name": commune.name,
                    "family_code": offer.family_code, "joined_at": moment}

    # news ----------------------------------------------------------------------------------------
    def list_news(self, slug: str, cursor: str | None) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = (select(News).where(News.commune_id == commune.id)
                     .order_by(News.published_at.desc(), News.id.desc())
                     .limit(domain.NEWS_PAGE + 1))
            if cursor:
                try:
                    published, news_id = domain.decode_cursor(cursor, 2)
                    before = datetime.fromisoformat(published)
                except (domain.RuleError, ValueError) as exc:
                    raise _invalid({"cursor": ["Curseur de pagination invalide."]}) from exc
                query = query.where(tuple_(News.published_at, News.id) < (before, news_id))
            rows = list(session.scalars(query))
        next_cursor = None
        if len(rows) > domain.NEWS_PAGE:
            last = rows[domain.NEWS_PAGE - 1]
            next_cursor = domain.encode_cursor([last.published_at.isoformat(), last.id])
        return {"items": [news_view(n) for n in rows[:domain.NEWS_PAGE]], "next": next_cursor}

    def post_news(self, principal: Principal, slug: str, payload: dict[str, Any]) -> dict:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            news = News(commune_id=commune.id, title=payload["title"], body=payload["body"],
                        published_at=now(), author_id=principal.account_id)
            session.add(news)
            session.flush()
            return news_view(news)

    # the gateway's internal calls ----------------------------------------------------------------
    def authenticate(self, email: str, password: str) -> dict[str, Any]:
        with self.db.transaction() as session:
            account = session.scalar(select(Account).where(
                Account.email == domain.normalise_email(email)))
            ok = domain.verify_password(account.password_hash if account else None, password)
            if not ok or account is None or account.status != "active":
                raise Problem(401, "Adresse e-mail ou mot de passe incorrect.")
            if domain.needs_rehash(account.password_hash):
                account.password_hash = domain.hash_password(password)
            # The gateway asks agents and admins for their second factor before it grants
            # their roles (docs/contract.md, "Second factor").
            return {**principal_claims(session, account),
                    "second_factor": second_factor.state(session, account)}

    def principal(self, account_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            account = session.get(Account, account_id)
            if account is None or account.status != "active":
                raise Problem(404)
            return principal_claims(session, account)


def principal_claims(session: Session, account: Account) -> dict[str, Any]:
    """``{account_id, email, family_id, platform_admin, communes: {slug: {id, name, roles}}}``:
    agents in their one commune, parents (role ``parent``) in each commune their household
    belongs to."""
    communes: dict[str, dict[str, Any]] = {}
    role = session.get(AgentRole, account.id)
    if role is not None:
        commune = session.get(Commune, role.commune_id)
        communes[commune.slug] = {"id": commune.id, "name": commune.name,
                                  "roles": list(role.roles)}
    for membership in Operations._memberships(session, account):
        commune = membership.commune
        entry = communes.setdefault(commune.slug, {"id": commune.id, "name": commune.name,
                                                   "roles": []})
        if "parent" not in entry["roles"]:
            entry["roles"].append("parent")
    return {
        "account_id": account.id,
        "email": account.email,
        "family_id": account.family_id,
        "platform_admin": account.platform_admin,
        "communes": communes,
    }
