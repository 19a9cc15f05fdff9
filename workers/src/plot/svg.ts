/** Text safe inside SVG markup (labels of the ageing grid and the charts). */
export const escapeXml = (t: string): string =>
  t.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
