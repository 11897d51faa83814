#!/usr/bin/env bash
# The mirror build: copies every ref of a CodeCommit repository to its
# replicas in other regions, then proves the replicas equal the source.
#
# Run by the mirror CodeBuild project (its buildspec in template.yaml carries
# this script: after editing it, run scripts/embed-mirror) with:
#   SIGNALBOX_MIRROR_SOURCE_REPOSITORY  source repository name
#   SIGNALBOX_MIRROR_SOURCE_REGION      its region
#   SIGNALBOX_MIRROR_TARGETS            space-separated region/repository pairs
# and optionally:
#   SIGNALBOX_MIRROR_ATTEMPTS           fetch-and-push rounds before giving up (default 3)
#   SIGNALBOX_MIRROR_URL_TEMPLATE       default codecommit::{region}://{repository}
#                                       (git-remote-codecommit, authenticated by the
#                                       build role); tests point it at local bare repos
#
# `git push --mirror` creates, moves (also by force) and deletes branches and
# tags so each replica ends with exactly the source's refs.
#
# Each replica is compared with the source as it is *after* the push, not with
# the snapshot this run cloned: two mirror runs of one repository can overlap
# (CodeBuild starts queued builds in no set order), and a slower run could push
# an older snapshot over a newer one after the newer run has finished. A run
# that finds a replica behind the source fetches again and pushes again, so the
# last run to push is also the last to check.
#
# repo-replicate counts on the clone happening in the BUILD phase: a build in
# an earlier phase is taken to include every push made so far
# (flows::repo_replicate::PHASES_BEFORE_CLONE). Clone nothing before BUILD.
#
# Exit status: 0 when every replica equals the source; 1 when a push failed or
# a replica still differs after the last round (the differing refs are
# printed); 2 when the configuration is invalid.
set -euo pipefail

source_repository=${SIGNALBOX_MIRROR_SOURCE_REPOSITORY:?SIGNALBOX_MIRROR_SOURCE_REPOSITORY is unset}
source_region=${SIGNALBOX_MIRROR_SOURCE_REGION:?SIGNALBOX_MIRROR_SOURCE_REGION is unset}
targets=${SIGNALBOX_MIRROR_TARGETS:?SIGNALBOX_MIRROR_TARGETS is unset}
template=${SIGNALBOX_MIRROR_URL_TEMPLATE:-'codecommit::{region}://{repository}'}
attempts=${SIGNALBOX_MIRROR_ATTEMPTS:-3}
case $attempts in
  '' | *[!0-9]* | 0)
    echo "FAILED: SIGNALBOX_MIRROR_ATTEMPTS must be a positive whole number, not '$attempts'" >&2
    exit 2
    ;;
esac

url() {
  local result=${template//\{region\}/$1}
  printf '%s' "${result//\{repository\}/$2}"
}

# git-remote-codecommit hands git an HTTPS URL with temporary credentials in
# it, and git may quote a URL in an error: cut the user info out of any URL.
redact() {
  sed -E 's#([A-Za-z][A-Za-z0-9+.-]*://)[^/@[:space:]]+@#\1***@#g'
}

# Runs git with its messages redacted; keeps git's exit status.
run_git() {
  local status=0 errors
  errors=$(mktemp "$work/git.XXXXXX")
  git "$@" 2>"$errors" || status=$?
  redact <"$errors" >&2
  rm -f "$errors"
  return "$status"
}

# Every ref but HEAD (a push cannot set a remote's HEAD), in a fixed order.
refs() {
  run_git ls-remote "$1" | awk -F'\t' '$2 != "HEAD"' | LC_ALL=C sort -k2
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
valid=()
for target in $targets; do
  region=${target%%/*}
  repository=${target#*/}
  if [ -z "$region" ] || [ -z "$repository" ] || [ "$region" = "$target" ]; then
    echo "FAILED: target '$target' is not region/repository" >&2
    failed=1
    continue
  fi
  valid+=("$target")
done
if [ "${#valid[@]}" -eq 0 ]; then
  echo "FAILED: SIGNALBOX_MIRROR_TARGETS names no region/repository target" >&2
  exit 2
fi

source_url=$(url "$source_region" "$source_repository")
echo "mirroring $source_region/$source_repository to ${valid[*]}"
echo "cloning $source_region/$source_repository"
if ! run_git clone --mirror --quiet "$source_url" "$work/source.git"; then
  echo "FAILED: cannot clone $source_region/$source_repository" >&2
  exit 1
fi

# Makes the replica's refs those of the local mirror.
push_to() {
  if [ -s "$work/snapshot.refs" ]; then
    run_git -C "$work/source.git" push --mirror --quiet "$1"
  else
    # An empty source: delete the replica's refs by name, which assumes
    # nothing about what `push --mirror` makes of a repository without refs.
    local stale
    stale=$(refs "$1" | awk -F'\t' '{print ":" $2}') || return 1
    # Ref names hold no spaces or glob characters: word splitting is safe.
    # shellcheck disable=SC2086
    [ -z "$stale" ] || run_git -C "$work/source.git" push --quiet "$1" $stale
  fi
}

pending=("${valid[@]}")
attempt=1
while :; do
  refs "$work/source.git" >"$work/snapshot.refs"
  echo "round $attempt of $attempts: the source has $(wc -l <"$work/snapshot.refs") refs"
  behind=()
  for target in "${pending[@]}"; do
    region=${target%%/*}
    repository=${target#*/}
    target_url=$(url "$region" "$repository")
    echo "pushing to $region/$repository"
    if ! push_to "$target_url"; then
      echo "FAILED: push to $region/$repository" >&2
      failed=1
      continue
    fi
    if ! refs "$target_url" >"$work/target.refs"; then
      echo "FAILED: cannot list the refs of $region/$repository" >&2
      failed=1
      continue
    fi
    if ! refs "$source_url" >"$work/source.refs"; then
      echo "FAILED: cannot list the refs of $source_region/$source_repository" >&2
      exit 1
    fi
    if cmp -s "$work/source.refs" "$work/target.refs"; then
      echo "ok: $region/$repository equals the source"
    elif [ "$attempt" -lt "$attempts" ]; then
      echo "$region/$repository differs from the source after the push (the source" \
        "changed, or another mirror run pushed meanwhile): it gets another round"
      behind+=("$target")
    else
      echo "FAILED: $region/$repository differs from the source after $attempts rounds:" >&2
      diff -u --label "source $source_region/$source_repository" \
        --label "replica $region/$repository" \
        "$work/source.refs" "$work/target.refs" >&2 || true
      failed=1
    fi
  done
  if [ "${#behind[@]}" -eq 0 ]; then
    break
  fi
  pending=("${behind[@]}")
  attempt=$((attempt + 1))
  echo "fetching $source_region/$source_repository again"
  if ! run_git -C "$work/source.git" fetch --prune --quiet origin; then
    echo "FAILED: cannot fetch $source_region/$source_repository" >&2
    exit 1
  fi
done
if [ "$failed" -eq 0 ]; then
  echo "done: every replica equals the source"
fi
exit "$failed"
