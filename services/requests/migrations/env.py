from services.common.migrate import run_env
from services.requests.models import metadata

run_env(metadata)
