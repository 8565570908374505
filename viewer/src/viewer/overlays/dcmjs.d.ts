// dcmjs ships no types; the header viewer only needs its data dictionary.
declare module 'dcmjs' {
  export const data: {
    DicomMetaDictionary: { dictionary: Record<string, { tag: string; name: string; vr: string } | undefined> };
  };
}
