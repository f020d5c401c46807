/** @type {import('jest').Config} */
export default {
  testEnvironment: "<rootDir>/tests/jsdom-with-fetch.cjs",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts", "**/*.test.tsx"],
  setupFilesAfterEnv: ["<rootDir>/tests/setup.ts"],
  transform: {
    "^.+\\.tsx?$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.jest.json" }],
  },
  collectCoverage: true,
  // main.tsx only mounts <App> into index.html; the browser tests (tests/web) run it.
  collectCoverageFrom: ["src/**/*.{ts,tsx}", "!src/main.tsx"],
  coverageDirectory: "coverage",
  coverageReporters: ["text", "text-summary", "lcov", "cobertura"],
  coverageThreshold: { global: { branches: 85, functions: 90, lines: 90, statements: 90 } },
};
