#!/usr/bin/env node
// The compiled server (npm run build, run by npm ci); it drains on SIGTERM and SIGINT and exits 0.
import "../dist/main.js"
