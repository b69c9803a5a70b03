"""The S3 document store: moto in-process for the store's own behaviour, moto's server on
127.0.0.1 for the endpoint of an S3-compatible provider and a request sent through the app."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from services.common.config import ConfigError, Settings
from services.requests.app import build_runtime
from services.requests.storage import (
    DocumentNotFound,
    S3Store,
    s3_client,
    store_from_settings,
)
from tests.requests.support import AGENT, PARENT, build, file_part, pdf, pickup_form, submitted

REGION = "eu-west-3"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
S3_SETTINGS = {"DOCUMENTS_STORE": "s3", "DOCUMENTS_S3_BUCKET": "documents-test",
               "DOCUMENTS_S3_REGION": REGION, **CREDENTIALS}


def create_bucket(client, name: str) -> None:
    client.create_bucket(Bucket=name,
                         CreateBucketConfiguration={"LocationConstraint": REGION})


def calls(client) -> list[str]:
    """The names of the operations the client makes from now on."""
    made: list[str] = []
    client.meta.events.register(
        "before-call.s3", lambda event_name, **_: made.append(event_name.rsplit(".", 1)[-1]))
    return made


@pytest.fixture
def s3():
    with mock_aws():
        client = s3_client(REGION, credentials=CREDENTIALS)
        create_bucket(client, "documents-test")
        yield client


@pytest.fixture
def store(s3) -> S3Store:
    return S3Store(s3, "documents-test")


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def settings(tmp_path, **extra: str) -> Settings:
    return Settings(service="requests", env="dev", data_dir=tmp_path / "data",
                    database_url=f"sqlite:///{tmp_path}/requests.db", amqp_url="memory://",
                    extra=extra)


# the store -----------------------------------------------------------------------------------
def test_content_goes_under_its_digest_encrypted_and_comes_back(store, s3):
    data = pdf("aller-retour")
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    name = f"documents/{key[:2]}/{key[2:4]}/{key}"
    assert store.object_key(key) == name
    head = s3.head_object(Bucket="documents-test", Key=name)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"] == {"sha256": key}
    assert store.exists(key) and store.size(key) == len(data)
    with store.open(key) as handle:
        assert handle.read() == data


def test_the_same_content_is_uploaded_once(store, s3):
    data = b"%PDF-1.4 twice"
    key = store.put(data)
    made = calls(s3)
    assert store.put(data) == key
    assert made == ["HeadObject"]  # present and young: nothing written
    assert [k for k, _ in store.entries()] == [key]


def test_an_old_object_stored_again_is_freshened_without_an_upload(store, s3):
    """The orphan sweep removes unreferenced objects a day old: content sent again must look
    new, as FilesystemStore's os.utime does, by a copy inside the bucket."""
    data = b"%PDF-1.4 again"
    key = store.put(data)
    store.freshen_after = timedelta(0)
    made = calls(s3)
    assert store.put(data) == key
    assert made == ["HeadObject", "CopyObject"]
    head = s3.head_object(Bucket="documents-test", Key=store.object_key(key))
    assert head["ServerSideEncryption"] == "AES256"
    with store.open(key) as handle:
        assert handle.read() == data


def test_delete_removes_and_is_quiet_when_absent(store):
    key = store.put(b"%PDF-1.4 to delete")
    store.delete(key)
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(DocumentNotFound):
        store.open(key)
    with pytest.raises(DocumentNotFound):
        store.size(key)


def test_entries_page_through_the_bucket_and_skip_what_is_not_a_document(s3):
    store = S3Store(s3, "documents-test", page_size=2)
    keys = {store.put(f"%PDF-1.4 number {n}".encode()) for n in range(5)}
    made = calls(s3)
    s3.put_object(Bucket="documents-test", Key="documents/readme.txt", Body=b"x")
    s3.put_object(Bucket="documents-test", Key="elsewhere/" + "a" * 64, Body=b"x")
    stray = "b" * 64
    s3.put_object(Bucket="documents-test", Key=f"documents/aa/aa/{stray}", Body=b"x")
    del made[:]
    listed = dict(store.entries())
    assert set(listed) == keys
    assert made.count("ListObjectsV2") == 4  # 6 objects under the prefix, 2 a page
    for written in listed.values():
        assert written.tzinfo is not None
        assert abs(datetime.now(UTC) - written) < timedelta(minutes=5)


def test_readiness_checks_the_bucket(s3):
    S3Store(s3, "documents-test").check()
    with pytest.raises(OSError, match="« absent » n'est pas accessible"):
        S3Store(s3, "absent").check()


@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "",
                                 "documents/" + "a" * 54, "a" * 63 + "\n", None])
def test_only_digests_are_keys_and_nothing_is_asked_before(store, s3, key):
    made = calls(s3)
    for operation in (store.open, store.size, store.delete):
        with pytest.raises(DocumentNotFound):
            operation(key)
    assert store.exists(key) is False
    assert made == []


def test_a_missing_object_of_a_missing_bucket_is_not_taken_for_a_missing_document(s3):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="NoSuchBucket"):
        S3Store(s3, "absent").open("a" * 64)


# configuration -------------------------------------------------------------------------------
def test_every_missing_variable_is_named_at_start(tmp_path):
    with pytest.raises(ConfigError) as raised:
        build_runtime(settings=settings(tmp_path, DOCUMENTS_STORE="s3"))
    assert raised.value.problems == [
        f"{name} est obligatoire avec DOCUMENTS_STORE=s3"
        for name in ("DOCUMENTS_S3_BUCKET", "DOCUMENTS_S3_REGION", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY")]


def test_a_half_given_configuration_names_what_is_left(tmp_path):
    given = {**S3_SETTINGS, "AWS_SECRET_ACCESS_KEY": " ", "DOCUMENTS_S3_ENDPOINT_URL": "s3.ovh"}
    with pytest.raises(ConfigError) as raised:
        store_from_settings(settings(tmp_path, **given))
    assert raised.value.problems == [
        "AWS_SECRET_ACCESS_KEY est obligatoire avec DOCUMENTS_STORE=s3",
        "DOCUMENTS_S3_ENDPOINT_URL doit être une adresse http:// ou https:// (reçu 's3.ovh')"]


def test_an_unknown_store_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="« filesystem » ou « s3 »"):
        store_from_settings(settings(tmp_path, DOCUMENTS_STORE="ftp"))


def test_the_client_has_timeouts_bounded_retries_and_the_given_credentials(tmp_path):
    store = store_from_settings(settings(tmp_path, **S3_SETTINGS))
    assert isinstance(store, S3Store) and store.bucket == "documents-test"
    config = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (3, 10)
    # botocore's max_attempts counts the retries: 3 of them, 4 attempts in all.
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert store.client.meta.region_name == REGION
    assert store.client.meta.endpoint_url == f"https://s3.{REGION}.amazonaws.com"
    credentials = store.client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("testing", "testing")


def test_an_s3_compatible_provider_is_reached_at_its_endpoint(tmp_path):
    store = store_from_settings(settings(
        tmp_path, **S3_SETTINGS, DOCUMENTS_S3_ENDPOINT_URL="https://s3.gra.io.cloud.ovh.net"))
    config = store.client.meta.config
    assert store.client.meta.endpoint_url == "https://s3.gra.io.cloud.ovh.net"
    assert config.s3 == {"addressing_style": "path"}
    assert config.request_checksum_calculation == "when_required"


# through moto's server, as an S3-compatible endpoint ------------------------------------------
def test_the_store_works_against_an_endpoint(tmp_path, endpoint):
    bucket = f"documents-{uuid.uuid4().hex[:12]}"
    store = store_from_settings(settings(tmp_path, **{**S3_SETTINGS, "DOCUMENTS_S3_BUCKET": bucket},
                                         DOCUMENTS_S3_ENDPOINT_URL=endpoint))
    with pytest.raises(OSError, match=bucket):
        store.check()
    create_bucket(store.client, bucket)
    store.check()
    data = pdf("par le point d'accès")
    key = store.put(data)
    assert store.put(data) == key
    with store.open(key) as handle:
        assert handle.read() == data
    assert [k for k, _ in store.entries()] == [key]
    store.delete(key)
    assert not store.exists(key) and list(store.entries()) == []


def test_a_request_with_its_document_goes_to_the_bucket_and_back(tmp_path, endpoint):
    bucket = f"documents-{uuid.uuid4().hex[:12]}"
    requests_app = build(tmp_path, f"sqlite:///{tmp_path}/requests.db",
                         **{**S3_SETTINGS, "DOCUMENTS_S3_BUCKET": bucket},
                         DOCUMENTS_S3_ENDPOINT_URL=endpoint)
    try:
        store = requests_app.store
        assert isinstance(store, S3Store)
        assert requests_app.get("/readyz").status_code == 503  # no bucket yet
        create_bucket(store.client, bucket)
        assert requests_app.get("/readyz").status_code == 200

        content = pdf("autorisation dans le compartiment")
        request = submitted(requests_app, pickup_form(identity_document=file_part(
            content, "carte.pdf", "application/pdf")))
        key = hashlib.sha256(content).hexdigest()
        assert [k for k, _ in store.entries()] == [key]
        assert not (requests_app.data_dir / "documents").exists()
        for who in (PARENT, AGENT):
            response = requests_app.get(request["documents"][0]["url"], who)
            assert response.status_code == 200
            assert response.get_data() == content
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.headers["Content-Length"] == str(len(content))

        # The sweep keeps what a document refers to, removes an orphan once a day old.
        orphan = store.put(b"%PDF-1.4 orphan")
        ops = requests_app.runtime.operations()
        assert ops.sweep_files() == 0
        assert ops.sweep_files(datetime.now(UTC) + timedelta(days=2)) == 1
        assert [k for k, _ in store.entries()] == [key] and not store.exists(orphan)

        store.delete(key)  # lost from the bucket: a 404, not a 500
        gone = requests_app.get(request["documents"][0]["url"], PARENT)
        assert gone.status_code == 404
    finally:
        requests_app.db.dispose()
