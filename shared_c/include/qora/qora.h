/*
 * Qora Edge core — the one header to include.
 *
 *   qora/status.h     status codes, flags, qora_status_str()
 *   qora/q16.h        Q16.16 fixed point: conversion, saturating arithmetic, isqrt
 *   qora/aggregate.h  fedavg, trimmed mean, median, krum, multi-krum (Q16.16 and float32),
 *                     pairwise distances, deviations, scratch sizes
 *
 * Compile-time options (define on the command line):
 *   QORA_NO_F32        leave out every float32 aggregator (firmware that only runs Q16.16)
 *   QORA_BLOCK_COLS    columns processed per block (default 64; smaller saves scratch on MCUs)
 */
#ifndef QORA_QORA_H
#define QORA_QORA_H

#include "qora/status.h"
#include "qora/q16.h"
#include "qora/aggregate.h"

#define QORA_VERSION_MAJOR 0
#define QORA_VERSION_MINOR 1
#define QORA_VERSION_PATCH 0

#endif /* QORA_QORA_H */
