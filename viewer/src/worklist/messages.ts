import { registerMessages } from '../i18n';

registerMessages({
  'zh-CN': {
    'list.title': '检查列表', 'list.patientId': '患者 ID', 'list.patientName': '姓名', 'list.accession': '检查号',
    'list.modality': '设备类型', 'list.bodyPart': '检查部位', 'list.dateFrom': '开始日期', 'list.dateTo': '结束日期',
    'list.hospital': '医院', 'list.search': '查询', 'list.reset': '清空', 'list.open': '打开',
    'list.date': '检查日期', 'list.description': '检查描述', 'list.images': '图像数', 'list.none': '没有符合条件的检查。',
    'list.priors': '该患者的其他检查', 'list.noPriors': '没有其他检查。', 'list.more': '更多', 'list.failed': '查询失败：{detail}',
    'list.compare': '对比',
  },
  en: {
    'list.title': 'Study list', 'list.patientId': 'Patient ID', 'list.patientName': 'Name', 'list.accession': 'Accession',
    'list.modality': 'Modality', 'list.bodyPart': 'Body part', 'list.dateFrom': 'From', 'list.dateTo': 'To',
    'list.hospital': 'Hospital', 'list.search': 'Search', 'list.reset': 'Clear', 'list.open': 'Open',
    'list.date': 'Study date', 'list.description': 'Description', 'list.images': 'Images', 'list.none': 'No study matches.',
    'list.priors': "This patient's other exams", 'list.noPriors': 'No other exams.', 'list.more': 'More', 'list.failed': 'Search failed: {detail}',
    'list.compare': 'Compare',
  },
});
