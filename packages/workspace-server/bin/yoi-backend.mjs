#!/usr/bin/env node
// The compiled server, bundled (npm run build, which npm ci runs); it drains on SIGTERM and SIGINT and exits 0.
import "../dist/bundle/main.js"
