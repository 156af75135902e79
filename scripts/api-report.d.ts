/** Types of scripts/api-report.js for test/api-report.spec.ts. */
export interface ApiName {
  name: string;
  kinds: string[];
  members: string[];
  internal: boolean;
}
export interface ApiReport {
  pkgName: string;
  file: string;
  names: ApiName[];
  text: string;
}
export interface ApiDifference {
  lib: string;
  file: string;
  expected: string | undefined;
  actual: string | undefined;
}
export function computeReports(): Map<string, ApiReport>;
export function differences(reports?: Map<string, ApiReport>): ApiDifference[];
