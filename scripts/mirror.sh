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
#   SIGNALBOX_MIRROR_PUSHED_AT          when the push happened (ISO 8601, UTC): the
#                                       replication lag is logged against it
#   SIGNALBOX_MIRROR_CREATE_REPLICAS    true: create a replica that does not exist,
#                                       tagged as a replica of the source (default false)
#   SIGNALBOX_MIRROR_URL_TEMPLATE       default
#                                       https://git-codecommit.{region}.amazonaws.com/v1/repos/{repository}
#                                       (the AWS CLI's credential helper, set up by the
#                                       buildspec, signs with the build role); tests
#                                       point it at local bare repositories
#
# This script is the trust boundary for anyone who may start the build with
# overrides: every name is checked against CodeCommit's rules before it
# reaches git or the AWS CLI, every expansion is quoted and nothing globs.
#
# A replica must be marked: its tag signalbox:replica-of must name this source
# (`<source region>/<source repository>`). A target without that tag is refused
# by name and nothing is pushed to it, so a typo in REPLICAS cannot overwrite
# somebody's repository (the role's GitPush carries the same condition).
#
# After a replica equals the source, its default branch is set to the source's
# (a push cannot set it), and, when SIGNALBOX_MIRROR_PUSHED_AT is given, the
# line `signalbox-replication-lag <seconds> <region>/<repository>` is printed
# for the log group's metric filter (ReplicationLagSeconds).
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
# Exit status: 0 when every replica equals the source; 1 when a target was
# refused, a push failed or a replica still differs after the last round (the
# differing refs are printed); 2 when the configuration is invalid.
set -euo pipefail
# Targets are split into words; none of them may ever become a file name.
set -f

# CodeCommit's repository names: 1-100 letters, digits, '.', '_', '-', not
# ending in .git ('.' and '..' are no names either).
valid_repository() {
  [[ $1 =~ ^[A-Za-z0-9._-]{1,100}$ ]] && [[ $1 != *.git ]] && [[ $1 != . ]] && [[ $1 != .. ]]
}

valid_region() {
  [[ $1 =~ ^[a-z0-9-]{1,32}$ ]]
}

source_repository=${SIGNALBOX_MIRROR_SOURCE_REPOSITORY:?SIGNALBOX_MIRROR_SOURCE_REPOSITORY is unset}
source_region=${SIGNALBOX_MIRROR_SOURCE_REGION:?SIGNALBOX_MIRROR_SOURCE_REGION is unset}
targets=${SIGNALBOX_MIRROR_TARGETS:?SIGNALBOX_MIRROR_TARGETS is unset}
template=${SIGNALBOX_MIRROR_URL_TEMPLATE:-'https://git-codecommit.{region}.amazonaws.com/v1/repos/{repository}'}
attempts=${SIGNALBOX_MIRROR_ATTEMPTS:-3}
pushed_at=${SIGNALBOX_MIRROR_PUSHED_AT:-}
create_replicas=${SIGNALBOX_MIRROR_CREATE_REPLICAS:-false}
case "$attempts" in
  '' | *[!0-9]* | 0)
    echo "FAILED: SIGNALBOX_MIRROR_ATTEMPTS must be a positive whole number, not '$attempts'" >&2
    exit 2
    ;;
esac
if ! valid_repository "$source_repository"; then
  echo "FAILED: SIGNALBOX_MIRROR_SOURCE_REPOSITORY is not a CodeCommit repository name" >&2
  exit 2
fi
if ! valid_region "$source_region"; then
  echo "FAILED: SIGNALBOX_MIRROR_SOURCE_REGION is not a region name" >&2
  exit 2
fi

# The replacement is quoted: under bash 5.2's patsub_replacement an unquoted
# '&' in it would stand for the matched text.
url() {
  local result=${template//\{region\}/"$1"}
  printf '%s' "${result//\{repository\}/"$2"}"
}

# The credential helper hands git credentials, and git may quote a URL in an
# error: cut the user info out of any URL.
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

# The partition and account of the repositories: the build's own (CodeBuild
# sets CODEBUILD_BUILD_ARN), else the caller's.
account_arn_prefix() {
  local build_arn=${CODEBUILD_BUILD_ARN:-} partition account
  if [[ $build_arn =~ ^arn:([a-z-]+):codebuild:[a-z0-9-]+:([0-9]{12}): ]]; then
    partition=${BASH_REMATCH[1]}
    account=${BASH_REMATCH[2]}
  else
    partition=aws
    account=$(aws sts get-caller-identity --query Account --output text) || return 1
  fi
  [[ $account =~ ^[0-9]{12}$ ]] || return 1
  printf '%s' "arn:$partition:codecommit:{region}:$account:{repository}"
}

# The tag that marks a replica: the source it is a replica of.
replica_of() {
  local arn=${arn_template//\{region\}/"$1"}
  arn=${arn//\{repository\}/"$2"}
  aws codecommit list-tags-for-resource --region "$1" --resource-arn "$arn" \
    --query 'tags."signalbox:replica-of"' --output text
}

# Creates a missing replica, tagged as a replica of the source in the same call.
create_replica() {
  echo "creating $1/$2, marked as a replica of $source_region/$source_repository"
  aws codecommit create-repository --region "$1" --repository-name "$2" \
    --repository-description "signalbox replica of $source_region/$source_repository" \
    --tags "signalbox:replica-of=$source_region/$source_repository" >/dev/null
}

# A repository's default branch; "None" when it has none (an empty repository).
default_branch() {
  aws codecommit get-repository --region "$1" --repository-name "$2" \
    --query repositoryMetadata.defaultBranch --output text
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
valid=()
# Split on blanks and newlines only; `set -f` keeps '*' a word.
read -r -d '' -a words <<<"$targets" || true
for target in "${words[@]}"; do
  region=${target%%/*}
  repository=${target#*/}
  if [ "$region" = "$target" ] || ! valid_region "$region" || ! valid_repository "$repository"; then
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

# Only marked replicas are pushed to.
if ! arn_template=$(account_arn_prefix); then
  echo "FAILED: cannot tell the account of the replicas: nothing pushed" >&2
  exit 1
fi
marked=()
for target in "${valid[@]}"; do
  region=${target%%/*}
  repository=${target#*/}
  if ! tag=$(replica_of "$region" "$repository" 2>"$work/tags.err"); then
    if [ "$create_replicas" = true ] && grep -q RepositoryDoesNotExistException "$work/tags.err" &&
      create_replica "$region" "$repository"; then
      marked+=("$target")
      continue
    fi
    redact <"$work/tags.err" >&2
    echo "FAILED: cannot read the tags of $region/$repository (does it exist?): nothing pushed to it" >&2
    failed=1
    continue
  fi
  if [ "$tag" != "$source_region/$source_repository" ]; then
    echo "FAILED: $region/$repository is not marked as a replica of $source_region/$source_repository" \
      "(tag signalbox:replica-of is '$tag'): nothing pushed to it" >&2
    failed=1
    continue
  fi
  marked+=("$target")
done
if [ "${#marked[@]}" -eq 0 ]; then
  echo "FAILED: no target is marked as a replica of $source_region/$source_repository" >&2
  exit 1
fi

# Makes the replica's refs those of the local mirror.
push_to() {
  if [ -s "$work/snapshot.refs" ]; then
    run_git -C "$work/source.git" push --mirror --quiet "$1"
  else
    # An empty source: delete the replica's refs by name, which assumes
    # nothing about what `push --mirror` makes of a repository without refs.
    local stale=()
    mapfile -t stale < <(refs "$1" | awk -F'\t' '{print ":" $2}')
    [ "${#stale[@]}" -eq 0 ] || run_git -C "$work/source.git" push --quiet "$1" "${stale[@]}"
  fi
}

# Sets the replica's default branch to the source's when they differ.
follow_default_branch() {
  local want=$1 region=$2 repository=$3 have
  if ! have=$(default_branch "$region" "$repository"); then
    echo "FAILED: cannot read the default branch of $region/$repository" >&2
    return 1
  fi
  [ "$have" != "$want" ] || return 0
  echo "setting the default branch of $region/$repository to $want (was $have)"
  if ! aws codecommit update-default-branch --region "$region" --repository-name "$repository" \
    --default-branch-name "$want" >/dev/null; then
    echo "FAILED: cannot set the default branch of $region/$repository" >&2
    return 1
  fi
}

pending=("${marked[@]}")
verified=()
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
      verified+=("$target")
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

if [ "${#verified[@]}" -gt 0 ]; then
  if ! source_default=$(default_branch "$source_region" "$source_repository"); then
    echo "FAILED: cannot read the default branch of $source_region/$source_repository" >&2
    failed=1
  elif [ "$source_default" != None ] && git check-ref-format --branch "$source_default" >/dev/null 2>&1; then
    for target in "${verified[@]}"; do
      follow_default_branch "$source_default" "${target%%/*}" "${target#*/}" || failed=1
    done
  fi
fi

# The lag from the push to the last verified replica, for the metric filter.
if [ "${#verified[@]}" -gt 0 ] &&
  [[ $pushed_at =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]]; then
  if pushed_seconds=$(date -u -d "$pushed_at" +%s 2>/dev/null); then
    lag=$(($(date -u +%s) - pushed_seconds))
    [ "$lag" -ge 0 ] || lag=0
    echo "signalbox-replication-lag $lag $source_region/$source_repository"
  fi
fi
if [ "$failed" -eq 0 ]; then
  echo "done: every replica equals the source"
fi
exit "$failed"
